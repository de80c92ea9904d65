//===- LoomC.cpp - the loom embedding API (C) -------------------------===//
//
// The C handles wrap the C++ objects. Every handle the library hands out is
// recorded in a table of live handles (with its kind) until destroyed, so a
// null, destroyed or foreign pointer, or a session passed as a module, is
// reported as LOOM_INVALID_ARGUMENT instead of being dereferenced. The table
// is the only state shared between handles; it holds no model data.
//
//===----------------------------------------------------------------------===//

#include "loom/loom.h"
#include "loom/loom.hpp"

#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

struct loom_options {
  loom::CompileOptions options;
};

struct loom_module {
  std::shared_ptr<const loom::Module> module;
  std::string error;
};

struct loom_session {
  std::unique_ptr<loom::Session> session;
  std::string error;
};

namespace {

enum class Kind { Options, Module, Session };

std::mutex &tableMutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<const void *, Kind> &table() {
  static std::unordered_map<const void *, Kind> t;
  return t;
}
void track(const void *p, Kind k) {
  std::lock_guard<std::mutex> lock(tableMutex());
  table()[p] = k;
}
void untrack(const void *p) {
  std::lock_guard<std::mutex> lock(tableMutex());
  table().erase(p);
}
bool live(const void *p, Kind k) {
  if (!p)
    return false;
  std::lock_guard<std::mutex> lock(tableMutex());
  auto it = table().find(p);
  return it != table().end() && it->second == k;
}

thread_local std::string lastError;

const char *kindName(Kind k) {
  return k == Kind::Module    ? "module"
         : k == Kind::Session ? "session"
                              : "options";
}

loom_status invalid(const void *p, Kind k, const char *fn) {
  lastError = std::string(fn) + ": " +
              (p ? std::string("not a live loom ") + kindName(k) +
                       " handle (destroyed, or not made by loom)"
                 : std::string("the ") + kindName(k) + " handle is null");
  return LOOM_INVALID_ARGUMENT;
}

loom_status report(std::string &slot, const loom::Result &r) {
  if (r)
    return LOOM_OK;
  slot = r.message();
  lastError = r.message();
  return LOOM_ERROR;
}

/// What an exception inside the library becomes (none crosses the C
/// boundary): in practice std::bad_alloc.
loom_status exceptionStatus() {
  lastError = "out of memory (or another exception inside loom)";
  return LOOM_ERROR;
}

loom_status nullArgument(std::string &slot, const char *fn, const char *what) {
  slot = std::string(fn) + ": " + what + " is null";
  lastError = slot;
  return LOOM_INVALID_ARGUMENT;
}

/// Converts C tensors; false (with `error`) for a bad one.
bool toRefs(const loom_tensor *in, size_t n, std::vector<loom::TensorRef> &out,
            std::string &error) {
  out.clear();
  if (n && !in) {
    error = "the tensor array is null";
    return false;
  }
  for (size_t k = 0; k < n; ++k) {
    const loom_tensor &t = in[k];
    if (t.rank < 0 || t.rank > loom::TensorRef::kMaxRank ||
        (t.rank > 0 && !t.shape)) {
      error = "tensor " + std::to_string(k) + " has rank " +
              std::to_string(t.rank) +
              (t.rank > 0 && !t.shape ? " but a null shape" : "") +
              " (ranks 0 to " + std::to_string(loom::TensorRef::kMaxRank) + ")";
      return false;
    }
    if (t.dtype != LOOM_F32 && t.dtype != LOOM_I64) {
      error = "tensor " + std::to_string(k) + " has an unknown dtype " +
              std::to_string(int(t.dtype));
      return false;
    }
    out.emplace_back(t.data,
                     t.dtype == LOOM_I64 ? loom::ElementType::I64
                                         : loom::ElementType::F32,
                     t.shape, size_t(t.rank));
  }
  return true;
}

bool toNamed(const char *const *names, const loom_tensor *in, size_t n,
             loom::Session::NamedInputs &out, std::string &error) {
  std::vector<loom::TensorRef> refs;
  if (!toRefs(in, n, refs, error))
    return false;
  if (n && !names) {
    error = "the names array is null";
    return false;
  }
  out.clear();
  for (size_t k = 0; k < n; ++k) {
    if (!names[k]) {
      error = "name " + std::to_string(k) + " is null";
      return false;
    }
    out.push_back({names[k], refs[k]});
  }
  return true;
}

std::vector<int64_t> shapeOf(int32_t rank, const int64_t *shape) {
  if (rank <= 0 || !shape)
    return {};
  return std::vector<int64_t>(shape, shape + rank);
}

} // namespace

extern "C" {

loom_options *loom_options_create(void) {
  auto *o = new (std::nothrow) loom_options();
  if (o)
    track(o, Kind::Options);
  return o;
}

void loom_options_destroy(loom_options *o) {
  if (!live(o, Kind::Options))
    return;
  untrack(o);
  delete o;
}

loom_status loom_options_set(loom_options *o, const char *key,
                             const char *value) try {
  if (!live(o, Kind::Options))
    return invalid(o, Kind::Options, "loom_options_set");
  if (!key || !value) {
    lastError = "loom_options_set: the key or value is null";
    return LOOM_INVALID_ARGUMENT;
  }
  std::string k = key, v = value;
  loom::CompileOptions &c = o->options;
  auto number = [&](unsigned &out) {
    char *end = nullptr;
    unsigned long n = std::strtoul(value, &end, 10);
    if (v.empty() || *end || n > 1u << 20) {
      lastError =
          "option '" + k + "' expects a non-negative integer, got '" + v + "'";
      return LOOM_ERROR;
    }
    out = unsigned(n);
    return LOOM_OK;
  };
  auto boolean = [&](bool &out) {
    if (v != "true" && v != "false") {
      lastError = "option '" + k + "' expects true or false, got '" + v + "'";
      return LOOM_ERROR;
    }
    out = v == "true";
    return LOOM_OK;
  };
  if (k == "model")
    c.model = v;
  else if (k == "unroll")
    return number(c.unroll);
  else if (k == "threads")
    return number(c.threads);
  else if (k == "opt_level")
    return number(c.optLevel);
  else if (k == "triple")
    c.triple = v;
  else if (k == "cpu")
    c.cpu = v;
  else if (k == "features")
    c.features = v;
  else if (k == "cache_dir")
    c.cacheDir = v;
  else if (k == "bf16_weights")
    return boolean(c.bf16Weights);
  else if (k == "training")
    return boolean(c.training);
  else if (k.rfind("train.", 0) == 0 && k.size() > 6)
    c.trainSettings[k.substr(6)] = v;
  else {
    lastError = "unknown option '" + k +
                "' (model, unroll, threads, opt_level, triple, cpu, "
                "features, cache_dir, bf16_weights, training, train.<key>)";
    return LOOM_ERROR;
  }
  return LOOM_OK;
} catch (...) {
  return exceptionStatus();
}

static loom_status
finishCompile(loom::Expected<std::shared_ptr<const loom::Module>> m,
              loom_module **out) {
  if (!m) {
    lastError = m.message();
    return LOOM_ERROR;
  }
  auto *h = new (std::nothrow) loom_module();
  if (!h) {
    lastError = "out of memory";
    return LOOM_ERROR;
  }
  h->module = *m;
  track(h, Kind::Module);
  *out = h;
  return LOOM_OK;
}

loom_status loom_module_compile_file(const char *path,
                                     const loom_options *options,
                                     loom_module **out) try {
  if (!path || !out) {
    lastError = "loom_module_compile_file: the path or out pointer is null";
    return LOOM_INVALID_ARGUMENT;
  }
  *out = nullptr;
  if (options && !live(options, Kind::Options))
    return invalid(options, Kind::Options, "loom_module_compile_file");
  return finishCompile(
      loom::Module::compileFile(path, options ? options->options
                                              : loom::CompileOptions()),
      out);
} catch (...) {
  return exceptionStatus();
}

loom_status loom_module_compile_string(const char *source,
                                       const loom_options *options,
                                       loom_module **out) try {
  if (!source || !out) {
    lastError = "loom_module_compile_string: the source or out pointer is null";
    return LOOM_INVALID_ARGUMENT;
  }
  *out = nullptr;
  if (options && !live(options, Kind::Options))
    return invalid(options, Kind::Options, "loom_module_compile_string");
  return finishCompile(
      loom::Module::compileString(source, options ? options->options
                                                  : loom::CompileOptions()),
      out);
} catch (...) {
  return exceptionStatus();
}

void loom_module_destroy(loom_module *m) {
  if (!live(m, Kind::Module))
    return;
  untrack(m);
  delete m;
}

const char *loom_module_error(const loom_module *m) {
  if (!live(m, Kind::Module)) {
    invalid(m, Kind::Module, "loom_module_error");
    return lastError.c_str();
  }
  return m->error.c_str();
}

size_t loom_module_num_inputs(const loom_module *m) {
  return live(m, Kind::Module) ? m->module->inputs().size() : 0;
}
size_t loom_module_num_outputs(const loom_module *m) {
  return live(m, Kind::Module) ? m->module->outputs().size() : 0;
}
const char *loom_module_input_name(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->inputs().size())
    return nullptr;
  return m->module->inputs()[i].name.c_str();
}
const char *loom_module_output_name(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->outputs().size())
    return nullptr;
  return m->module->outputs()[i].name.c_str();
}
int loom_module_input_is_state(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->inputs().size())
    return 0;
  return !m->module->inputs()[i].state.empty();
}
int loom_module_output_is_state(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->outputs().size())
    return 0;
  return !m->module->outputs()[i].state.empty();
}

size_t loom_module_num_parameters(const loom_module *m) {
  return live(m, Kind::Module) ? m->module->parameters().size() : 0;
}
const char *loom_module_parameter_name(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->parameters().size())
    return nullptr;
  return m->module->parameters()[i].name.c_str();
}
int32_t loom_module_parameter_rank(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->parameters().size())
    return -1;
  return int32_t(m->module->parameters()[i].shape.size());
}
const int64_t *loom_module_parameter_shape(const loom_module *m, size_t i) {
  if (!live(m, Kind::Module) || i >= m->module->parameters().size())
    return nullptr;
  return m->module->parameters()[i].shape.data();
}
int loom_module_from_cache(const loom_module *m) {
  return live(m, Kind::Module) && m->module->fromCache();
}

const char *loom_module_ir(loom_module *m, const char *phase) {
  if (!live(m, Kind::Module)) {
    invalid(m, Kind::Module, "loom_module_ir");
    return nullptr;
  }
  static const std::pair<const char *, loom::Phase> phases[] = {
      {"ast", loom::Phase::AST},
      {"loom", loom::Phase::Loom},
      {"linalg", loom::Phase::Linalg},
      {"llvm-dialect", loom::Phase::LLVMDialect},
      {"llvm-ir", loom::Phase::LLVMIR},
      {"asm", loom::Phase::Asm}};
  std::string p = phase ? phase : "";
  if (p == "remarks")
    return m->module->remarks().c_str();
  for (const auto &[name, ph] : phases)
    if (p == name)
      return m->module->ir(ph).c_str();
  m->error = "unknown phase '" + p +
             "' (ast, loom, linalg, llvm-dialect, llvm-ir, asm, remarks)";
  lastError = m->error;
  return nullptr;
}

loom_status loom_session_create(loom_module *m, loom_session **out) try {
  if (!out) {
    lastError = "loom_session_create: the out pointer is null";
    return LOOM_INVALID_ARGUMENT;
  }
  *out = nullptr;
  if (!live(m, Kind::Module))
    return invalid(m, Kind::Module, "loom_session_create");
  auto *s = new (std::nothrow) loom_session();
  if (!s) {
    lastError = "out of memory";
    return LOOM_ERROR;
  }
  s->session = std::make_unique<loom::Session>(m->module);
  track(s, Kind::Session);
  *out = s;
  return LOOM_OK;
} catch (...) {
  return exceptionStatus();
}

void loom_session_destroy(loom_session *s) {
  if (!live(s, Kind::Session))
    return;
  untrack(s);
  delete s;
}

const char *loom_session_error(const loom_session *s) {
  if (!live(s, Kind::Session)) {
    invalid(s, Kind::Session, "loom_session_error");
    return lastError.c_str();
  }
  return s->error.c_str();
}

#define LOOM_SESSION(s, fn)                                                    \
  if (!live(s, Kind::Session))                                                 \
    return invalid(s, Kind::Session, fn);

loom_status loom_session_set_threads(loom_session *s, unsigned threads) try {
  LOOM_SESSION(s, "loom_session_set_threads");
  if (threads > 1024)
    return report(s->error, loom::Result::failure(
                                "threads must be between 0 (every core) and "
                                "1024, not " +
                                std::to_string(threads)));
  s->session->setThreads(threads);
  return LOOM_OK;
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_load_weights(loom_session *s, const char *path) try {
  LOOM_SESSION(s, "loom_session_load_weights");
  if (!path)
    return nullArgument(s->error, "loom_session_load_weights", "the path");
  return report(s->error, s->session->loadWeights(path));
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_save_weights(loom_session *s, const char *path) try {
  LOOM_SESSION(s, "loom_session_save_weights");
  if (!path)
    return nullArgument(s->error, "loom_session_save_weights", "the path");
  return report(s->error, s->session->saveWeights(path));
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_set_parameter(loom_session *s, const char *name,
                                       const float *data, int32_t rank,
                                       const int64_t *shape) try {
  LOOM_SESSION(s, "loom_session_set_parameter");
  if (!name)
    return nullArgument(s->error, "loom_session_set_parameter", "the name");
  if (rank < 0 || rank > loom::TensorRef::kMaxRank || (rank && !shape))
    return report(s->error,
                  loom::Result::failure("parameter '" + std::string(name) +
                                        "': a bad rank or a null shape"));
  return report(s->error,
                s->session->setParameter(name, data, shapeOf(rank, shape)));
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_get_parameter(loom_session *s, const char *name,
                                       float *data, size_t count) try {
  LOOM_SESSION(s, "loom_session_get_parameter");
  if (!name)
    return nullArgument(s->error, "loom_session_get_parameter", "the name");
  return report(s->error, s->session->getParameter(name, data, count));
} catch (...) {
  return exceptionStatus();
}

static loom_status runOrStep(loom_session *s, const loom_tensor *inputs,
                             size_t numInputs, const loom_tensor *outputs,
                             size_t numOutputs, bool step) {
  thread_local std::vector<loom::TensorRef> in, out;
  std::string error;
  if (!toRefs(inputs, numInputs, in, error) ||
      !toRefs(outputs, numOutputs, out, error))
    return report(s->error, loom::Result::failure(error));
  return report(s->error,
                step ? s->session->step(in, out) : s->session->run(in, out));
}

loom_status loom_session_run(loom_session *s, const loom_tensor *inputs,
                             size_t num_inputs, const loom_tensor *outputs,
                             size_t num_outputs) try {
  LOOM_SESSION(s, "loom_session_run");
  return runOrStep(s, inputs, num_inputs, outputs, num_outputs, false);
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_output_shapes(loom_session *s,
                                       const loom_tensor *inputs,
                                       size_t num_inputs, int64_t *shapes,
                                       int32_t *ranks) try {
  LOOM_SESSION(s, "loom_session_output_shapes");
  if (!shapes || !ranks)
    return nullArgument(s->error, "loom_session_output_shapes",
                        "the shapes or ranks array");
  std::vector<loom::TensorRef> in;
  std::string error;
  if (!toRefs(inputs, num_inputs, in, error))
    return report(s->error, loom::Result::failure(error));
  auto out = s->session->outputShapes(in);
  if (!out)
    return report(s->error, out.error());
  for (size_t k = 0; k < out->size(); ++k) {
    const std::vector<int64_t> &shape = (*out)[k];
    ranks[k] = int32_t(shape.size());
    for (size_t d = 0; d < shape.size() && d < 8; ++d)
      shapes[8 * k + d] = shape[d];
  }
  return LOOM_OK;
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_step(loom_session *s, const loom_tensor *inputs,
                              size_t num_inputs, const loom_tensor *outputs,
                              size_t num_outputs) try {
  LOOM_SESSION(s, "loom_session_step");
  return runOrStep(s, inputs, num_inputs, outputs, num_outputs, true);
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_reset_state(loom_session *s) try {
  LOOM_SESSION(s, "loom_session_reset_state");
  s->session->resetState();
  return LOOM_OK;
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_get_state(loom_session *s, const char *name,
                                   float *data, size_t count) try {
  LOOM_SESSION(s, "loom_session_get_state");
  if (!name)
    return nullArgument(s->error, "loom_session_get_state", "the name");
  return report(s->error, s->session->getState(name, data, count));
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_set_state(loom_session *s, const char *name,
                                   const float *data, int32_t rank,
                                   const int64_t *shape) try {
  LOOM_SESSION(s, "loom_session_set_state");
  if (!name)
    return nullArgument(s->error, "loom_session_set_state", "the name");
  if (rank < 0 || rank > loom::TensorRef::kMaxRank || (rank && !shape))
    return report(s->error,
                  loom::Result::failure("state '" + std::string(name) +
                                        "': a bad rank or a null shape"));
  return report(s->error,
                s->session->setState(name, data, shapeOf(rank, shape)));
} catch (...) {
  return exceptionStatus();
}

static loom_status training(loom_session *s, const char *const *names,
                            const loom_tensor *inputs, size_t n, float *loss,
                            bool step) {
  loom::Session::NamedInputs named;
  std::string error;
  if (!toNamed(names, inputs, n, named, error))
    return report(s->error, loom::Result::failure(error));
  auto r =
      step ? s->session->trainStep(named) : s->session->computeGradients(named);
  if (!r)
    return report(s->error, r.error());
  if (loss)
    *loss = *r;
  return LOOM_OK;
}

loom_status loom_session_compute_gradients(loom_session *s,
                                           const char *const *names,
                                           const loom_tensor *inputs,
                                           size_t num_inputs, float *loss) try {
  LOOM_SESSION(s, "loom_session_compute_gradients");
  return training(s, names, inputs, num_inputs, loss, false);
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_get_gradient(loom_session *s, const char *name,
                                      float *data, size_t count) try {
  LOOM_SESSION(s, "loom_session_get_gradient");
  if (!name)
    return nullArgument(s->error, "loom_session_get_gradient", "the name");
  return report(s->error, s->session->gradient(name, data, count));
} catch (...) {
  return exceptionStatus();
}

loom_status loom_session_train_step(loom_session *s, const char *const *names,
                                    const loom_tensor *inputs,
                                    size_t num_inputs, float *loss) try {
  LOOM_SESSION(s, "loom_session_train_step");
  return training(s, names, inputs, num_inputs, loss, true);
} catch (...) {
  return exceptionStatus();
}

const char *loom_last_error(void) { return lastError.c_str(); }

} // extern "C"
