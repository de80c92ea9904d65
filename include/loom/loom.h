/*===- loom.h - the loom embedding API (C) ------------------------*- C -*-===*
 *
 * A C interface to loom.hpp: opaque handles with explicit create and
 * destroy, status codes, and the message of the last failure of each
 * handle. A module is immutable and may be shared by threads; a session is
 * used by one thread at a time.
 *
 *   loom_module *m = NULL;
 *   if (loom_module_compile_file("charlm.loom", NULL, &m) != LOOM_OK) {
 *     fprintf(stderr, "%s\n", loom_last_error(NULL));
 *     return 1;
 *   }
 *   loom_session *s = NULL;
 *   loom_session_create(m, &s);
 *   loom_session_load_weights(s, "charlm.safetensors");
 *   ...
 *   loom_session_destroy(s);
 *   loom_module_destroy(m);
 *
 * Messages: loom_module_error(m) and loom_session_error(s) return the
 * message of that handle's last failure; failures with no handle to hold
 * them (a compile that failed, a null or destroyed handle) are read with
 * loom_last_error(), which is per thread. The returned strings stay valid
 * until the next call on the same handle (or thread).
 *
 *===----------------------------------------------------------------------===*/

#ifndef LOOM_LOOM_H
#define LOOM_LOOM_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define LOOM_C_API
#else
#define LOOM_C_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum loom_status {
  LOOM_OK = 0,
  LOOM_ERROR = 1,            /* bad input: the message says what */
  LOOM_INVALID_ARGUMENT = 2, /* a null, destroyed or wrong handle/pointer */
} loom_status;

typedef enum loom_dtype { LOOM_F32 = 0, LOOM_I64 = 1 } loom_dtype;

typedef struct loom_module loom_module;
typedef struct loom_session loom_session;
typedef struct loom_options loom_options;

/* A dense row-major tensor the caller owns. */
typedef struct loom_tensor {
  void *data;
  loom_dtype dtype;
  int32_t rank;
  const int64_t *shape;
} loom_tensor;

/* Compile options; NULL everywhere means the defaults. */
LOOM_C_API loom_options *loom_options_create(void);
LOOM_C_API void loom_options_destroy(loom_options *o);
/* Keys: "model", "unroll", "threads", "triple", "cpu", "features",
 * "opt_level", "bf16_weights" ("true"/"false"), "training", "cache_dir",
 * and "train.<setting>" for the model's train settings ("train.lr"). */
LOOM_C_API loom_status loom_options_set(loom_options *o, const char *key,
                                        const char *value);

LOOM_C_API loom_status loom_module_compile_file(const char *path,
                                                const loom_options *options,
                                                loom_module **out);
LOOM_C_API loom_status loom_module_compile_string(const char *source,
                                                  const loom_options *options,
                                                  loom_module **out);
LOOM_C_API void loom_module_destroy(loom_module *m);
LOOM_C_API const char *loom_module_error(const loom_module *m);

LOOM_C_API size_t loom_module_num_inputs(const loom_module *m);
LOOM_C_API size_t loom_module_num_outputs(const loom_module *m);
LOOM_C_API const char *loom_module_input_name(const loom_module *m, size_t i);
LOOM_C_API const char *loom_module_output_name(const loom_module *m, size_t i);
/* Whether input or output i is a recurrent state (kept by streaming). */
LOOM_C_API int loom_module_input_is_state(const loom_module *m, size_t i);
LOOM_C_API int loom_module_output_is_state(const loom_module *m, size_t i);
/* Parameters, in the model's order: name, rank and shape (the shape array
 * stays valid with the module). */
LOOM_C_API size_t loom_module_num_parameters(const loom_module *m);
LOOM_C_API const char *loom_module_parameter_name(const loom_module *m,
                                                  size_t i);
LOOM_C_API int32_t loom_module_parameter_rank(const loom_module *m, size_t i);
LOOM_C_API const int64_t *loom_module_parameter_shape(const loom_module *m,
                                                      size_t i);
/* Whether the module's code came from the compile cache. */
LOOM_C_API int loom_module_from_cache(const loom_module *m);
/* The IR after a phase: "ast", "loom", "linalg", "llvm-dialect", "llvm-ir",
 * "asm", or "remarks"; NULL (with loom_module_error) for another name. */
LOOM_C_API const char *loom_module_ir(loom_module *m, const char *phase);

LOOM_C_API loom_status loom_session_create(loom_module *m, loom_session **out);
LOOM_C_API void loom_session_destroy(loom_session *s);
LOOM_C_API const char *loom_session_error(const loom_session *s);
LOOM_C_API loom_status loom_session_set_threads(loom_session *s,
                                                unsigned threads);

LOOM_C_API loom_status loom_session_load_weights(loom_session *s,
                                                 const char *path);
LOOM_C_API loom_status loom_session_save_weights(loom_session *s,
                                                 const char *path);
LOOM_C_API loom_status loom_session_set_parameter(loom_session *s,
                                                  const char *name,
                                                  const float *data,
                                                  int32_t rank,
                                                  const int64_t *shape);
LOOM_C_API loom_status loom_session_get_parameter(loom_session *s,
                                                  const char *name, float *data,
                                                  size_t count);

/* Whole sequences: every input and output, in declaration order. */
LOOM_C_API loom_status loom_session_run(loom_session *s,
                                        const loom_tensor *inputs,
                                        size_t num_inputs,
                                        const loom_tensor *outputs,
                                        size_t num_outputs);
/* The shapes loom_session_run writes for these inputs: output k's rank in
 * ranks[k] and its sizes in shapes[8 * k ...] (8 = the largest rank). */
LOOM_C_API loom_status loom_session_output_shapes(loom_session *s,
                                                  const loom_tensor *inputs,
                                                  size_t num_inputs,
                                                  int64_t *shapes,
                                                  int32_t *ranks);
/* Streaming: the inputs and outputs that are not recurrent states. */
LOOM_C_API loom_status loom_session_step(loom_session *s,
                                         const loom_tensor *inputs,
                                         size_t num_inputs,
                                         const loom_tensor *outputs,
                                         size_t num_outputs);
LOOM_C_API loom_status loom_session_reset_state(loom_session *s);
LOOM_C_API loom_status loom_session_get_state(loom_session *s, const char *name,
                                              float *data, size_t count);
LOOM_C_API loom_status loom_session_set_state(loom_session *s, const char *name,
                                              const float *data, int32_t rank,
                                              const int64_t *shape);

/* Training (a module compiled with "training" = "true"): inputs by name. */
LOOM_C_API loom_status loom_session_compute_gradients(loom_session *s,
                                                      const char *const *names,
                                                      const loom_tensor *inputs,
                                                      size_t num_inputs,
                                                      float *loss);
LOOM_C_API loom_status loom_session_get_gradient(loom_session *s,
                                                 const char *name, float *data,
                                                 size_t count);
LOOM_C_API loom_status loom_session_train_step(loom_session *s,
                                               const char *const *names,
                                               const loom_tensor *inputs,
                                               size_t num_inputs, float *loss);

/* The message of this thread's last failure that no handle holds. */
LOOM_C_API const char *loom_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LOOM_LOOM_H */
