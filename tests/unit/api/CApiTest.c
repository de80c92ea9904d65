/* The C API, from C: compile the character LM, stream a sequence step by
 * step and compare with one whole-sequence run, read the IR, and check that
 * misuse (wrong shapes, missing weights, null and destroyed handles) comes
 * back as a status and a message. Exits 0 when every check passes. */

#include "loom/loom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

static int contains(const char *text, const char *part) {
  return text && strstr(text, part) != NULL;
}

enum { T = 10, V = 75, H = 128 };

int main(void) {
  const char *model = LOOM_SOURCE_DIR "/examples/charlm/charlm.loom";
  const char *weights = LOOM_SOURCE_DIR "/examples/charlm/charlm.safetensors";

  loom_options *opts = loom_options_create();
  CHECK(loom_options_set(opts, "threads", "1") == LOOM_OK, "threads");
  CHECK(loom_options_set(opts, "unroll", "x") == LOOM_ERROR, "bad unroll");
  CHECK(contains(loom_last_error(), "expects a non-negative integer"), "%s",
        loom_last_error());
  CHECK(loom_options_set(opts, "colour", "red") == LOOM_ERROR, "bad key");

  loom_module *m = NULL;
  if (loom_module_compile_file(model, opts, &m) != LOOM_OK) {
    fprintf(stderr, "compile failed: %s\n", loom_last_error());
    return 1;
  }
  loom_options_destroy(opts);
  CHECK(loom_module_num_inputs(m) == 3, "inputs");
  CHECK(loom_module_num_outputs(m) == 3, "outputs");
  CHECK(strcmp(loom_module_input_name(m, 0), "tokens") == 0, "tokens");
  CHECK(!loom_module_input_is_state(m, 0) && loom_module_input_is_state(m, 1),
        "state inputs");
  CHECK(loom_module_output_is_state(m, 2), "state outputs");
  CHECK(loom_module_num_parameters(m) == 11, "parameters");
  CHECK(strcmp(loom_module_parameter_name(m, 0), "encoder.weight") == 0,
        "first parameter %s", loom_module_parameter_name(m, 0));
  CHECK(loom_module_parameter_rank(m, 0) == 2 &&
            loom_module_parameter_shape(m, 0)[0] == 75 &&
            loom_module_parameter_shape(m, 0)[1] == 32,
        "encoder.weight shape");
  CHECK(loom_module_parameter_name(m, 11) == NULL, "past the end");
  CHECK(!loom_module_from_cache(m), "no cache");
  CHECK(contains(loom_module_ir(m, "llvm-ir"), "define "), "llvm-ir");
  CHECK(loom_module_ir(m, "bogus") == NULL, "bogus phase");
  CHECK(contains(loom_module_error(m), "unknown phase 'bogus'"), "%s",
        loom_module_error(m));

  loom_session *whole = NULL, *stream = NULL;
  CHECK(loom_session_create(m, &whole) == LOOM_OK, "session");
  CHECK(loom_session_create(m, &stream) == LOOM_OK, "session");

  int64_t tokens[T];
  for (int t = 0; t < T; ++t)
    tokens[t] = (t * 13 + 2) % V;
  int64_t tok1[] = {1, 1}, seqShape[] = {T, 1};
  int64_t stateShape[] = {2, 1, H}, logitShape[] = {T, 1, V},
          logit1[] = {1, 1, V};
  static float h0[2 * H], c0[2 * H], hn[2 * H], cn[2 * H], logits[T * V],
      step[V];

  /* Running before the weights are set is an error, not a crash. */
  loom_tensor in1 = {&tokens[0], LOOM_I64, 2, tok1};
  loom_tensor out1 = {step, LOOM_F32, 3, logit1};
  CHECK(loom_session_step(stream, &in1, 1, &out1, 1) == LOOM_ERROR, "early");
  CHECK(contains(loom_session_error(stream), "the weights are not set"), "%s",
        loom_session_error(stream));

  CHECK(loom_session_load_weights(whole, weights) == LOOM_OK, "%s",
        loom_session_error(whole));
  CHECK(loom_session_load_weights(stream, weights) == LOOM_OK, "%s",
        loom_session_error(stream));
  CHECK(loom_session_load_weights(stream, "/nonexistent.safetensors") ==
            LOOM_ERROR,
        "missing weights");

  loom_tensor in[3] = {{tokens, LOOM_I64, 2, seqShape},
                       {h0, LOOM_F32, 3, stateShape},
                       {c0, LOOM_F32, 3, stateShape}};
  loom_tensor out[3] = {{logits, LOOM_F32, 3, logitShape},
                        {hn, LOOM_F32, 3, stateShape},
                        {cn, LOOM_F32, 3, stateShape}};
  {
    int64_t shapes[3 * 8];
    int32_t ranks[3];
    CHECK(loom_session_output_shapes(whole, in, 3, shapes, ranks) == LOOM_OK,
          "%s", loom_session_error(whole));
    CHECK(ranks[0] == 3 && shapes[0] == T && shapes[1] == 1 && shapes[2] == V,
          "logits shape");
    CHECK(ranks[1] == 3 && shapes[8] == 2 && shapes[10] == H, "h_n shape");
  }
  CHECK(loom_session_run(whole, in, 3, out, 3) == LOOM_OK, "%s",
        loom_session_error(whole));

  for (int t = 0; t < T; ++t) {
    in1.data = &tokens[t];
    CHECK(loom_session_step(stream, &in1, 1, &out1, 1) == LOOM_OK, "%s",
          loom_session_error(stream));
    for (int v = 0; v < V; ++v) {
      float want = logits[t * V + v];
      if (fabsf(step[v] - want) > 1e-6f + 1e-5f * fabsf(want)) {
        CHECK(0, "step %d logit %d: %g vs %g", t, v, step[v], want);
        break;
      }
    }
  }
  static float h[2 * H];
  CHECK(loom_session_get_state(stream, "h0", h, 2 * H) == LOOM_OK, "state");
  for (int i = 0; i < 2 * H; ++i)
    if (fabsf(h[i] - hn[i]) > 1e-6f + 1e-5f * fabsf(hn[i])) {
      CHECK(0, "h_n[%d]: %g vs %g", i, h[i], hn[i]);
      break;
    }

  /* Bad shapes and values. */
  int64_t badShape[] = {1, 74};
  loom_tensor badOut = {step, LOOM_F32, 2, badShape};
  CHECK(loom_session_step(stream, &in1, 1, &badOut, 1) == LOOM_ERROR, "shape");
  CHECK(contains(loom_session_error(stream), "must have shape [1, 1, 75]"),
        "%s", loom_session_error(stream));
  int64_t badToken = -1;
  loom_tensor badIn = {&badToken, LOOM_I64, 2, tok1};
  CHECK(loom_session_step(stream, &badIn, 1, &out1, 1) == LOOM_ERROR, "id");
  CHECK(contains(loom_session_error(stream), "token id -1"), "%s",
        loom_session_error(stream));
  loom_tensor nullShape = {&badToken, LOOM_I64, 2, NULL};
  CHECK(loom_session_step(stream, &nullShape, 1, &out1, 1) == LOOM_ERROR,
        "null shape");
  CHECK(loom_session_set_state(stream, "h0", h, 3, logit1) == LOOM_ERROR,
        "state shape");
  CHECK(contains(loom_session_error(stream), "input 'h0' must have shape"),
        "%s", loom_session_error(stream));
  CHECK(loom_session_compute_gradients(stream, NULL, NULL, 0, NULL) ==
            LOOM_ERROR,
        "training without training");

  /* Null and destroyed handles. */
  CHECK(loom_session_step(NULL, &in1, 1, &out1, 1) == LOOM_INVALID_ARGUMENT,
        "null session");
  CHECK(contains(loom_last_error(), "the session handle is null"), "%s",
        loom_last_error());
  loom_session_destroy(whole);
  CHECK(loom_session_run(whole, in, 3, out, 3) == LOOM_INVALID_ARGUMENT,
        "destroyed session");
  CHECK(contains(loom_last_error(), "not a live loom session handle"), "%s",
        loom_last_error());
  loom_session_destroy(whole); /* twice: ignored */
  CHECK(loom_session_create((loom_module *)stream, &whole) ==
            LOOM_INVALID_ARGUMENT,
        "a session passed as a module");
  CHECK(loom_session_reset_state(stream) == LOOM_OK, "reset");
  loom_session_destroy(stream);
  loom_module_destroy(m);
  CHECK(loom_module_num_inputs(m) == 0, "destroyed module");
  CHECK(loom_session_create(m, &stream) == LOOM_INVALID_ARGUMENT,
        "destroyed module");

  /* A compile error carries the diagnostic. */
  loom_module *bad = NULL;
  CHECK(loom_module_compile_string("model M {\n  output y\n}\n", NULL, &bad) ==
            LOOM_ERROR,
        "bad model");
  CHECK(bad == NULL, "no module on failure");
  CHECK(contains(loom_last_error(), "error:"), "%s", loom_last_error());

  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("C API: all checks passed\n");
  return failures ? 1 : 0;
}
