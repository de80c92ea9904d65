//===- loom.hpp - the loom embedding API (C++) ------------------*- C++ -*-===//
//
// Compile a loom model (a file or a string) to native code, bind its
// weights, and run it on buffers the host program owns: whole sequences,
// one time step at a time with the recurrent state kept between calls
// (streaming), or training steps. Nothing here throws: every fallible call
// returns a Result or an Expected that carries the diagnostic text.
//
//   auto module = loom::Module::compileFile("charlm.loom");
//   if (!module) { std::cerr << module.message(); return 1; }
//   loom::Session session(*module);
//   session.loadWeights("charlm.safetensors");
//   int64_t token = 3;
//   std::vector<float> logits(75);
//   loom::Result r = session.step({loom::TensorRef(&token, {1, 1})},
//                                 {loom::TensorRef(logits.data(), {1, 1,
//                                 75})});
//
// A Module is immutable once compiled and may be shared by any number of
// threads; a Session holds the weights, the recurrent state and scratch
// space, and is used by one thread at a time. There is no global mutable
// state. See docs/api.md.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_LOOM_HPP
#define LOOM_LOOM_HPP

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#if defined(_WIN32)
#define LOOM_API
#else
#define LOOM_API __attribute__((visibility("default")))
#endif

namespace loom {

/// Success, or failure with a message (the same text `loom` prints).
class Result {
public:
  Result() = default;
  static Result failure(std::string message) {
    Result r;
    r.failed = true;
    r.text = std::move(message);
    return r;
  }
  bool ok() const { return !failed; }
  explicit operator bool() const { return !failed; }
  const std::string &message() const { return text; }

private:
  bool failed = false;
  std::string text;
};

/// A value, or the Result of a failure.
template <typename T> class Expected {
public:
  Expected(T value) : value(std::move(value)) {}
  Expected(Result error) : error_(std::move(error)) {}
  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }
  T &operator*() { return *value; }
  const T &operator*() const { return *value; }
  T *operator->() { return &*value; }
  const T *operator->() const { return &*value; }
  const Result &error() const { return error_; }
  const std::string &message() const { return error_.message(); }

private:
  std::optional<T> value;
  Result error_;
};

enum class ElementType { F32, I64 };

/// A dense row-major tensor in memory the caller owns: loom reads inputs
/// from it and writes outputs into it, without copying.
struct TensorRef {
  static constexpr int kMaxRank = 8;
  void *data = nullptr;
  ElementType type = ElementType::F32;
  int rank = 0;
  int64_t shape[kMaxRank] = {};

  TensorRef() = default;
  TensorRef(float *d, std::initializer_list<int64_t> s)
      : TensorRef(d, ElementType::F32, s.begin(), s.size()) {}
  TensorRef(const float *d, std::initializer_list<int64_t> s)
      : TensorRef(const_cast<float *>(d), s) {}
  TensorRef(int64_t *d, std::initializer_list<int64_t> s)
      : TensorRef(d, ElementType::I64, s.begin(), s.size()) {}
  TensorRef(const int64_t *d, std::initializer_list<int64_t> s)
      : TensorRef(const_cast<int64_t *>(d), s) {}
  /// Any rank up to kMaxRank; a larger one is reported by the call using it.
  TensorRef(void *d, ElementType t, const int64_t *s, size_t n)
      : data(d), type(t), rank(int(n)) {
    for (size_t k = 0; k < n && k < size_t(kMaxRank); ++k)
      shape[k] = s[k];
  }
  int64_t numElements() const {
    int64_t n = 1;
    for (int k = 0; k < rank && k < kMaxRank; ++k)
      n *= shape[k];
    return n;
  }
};

/// How to compile. Empty strings mean the host's.
struct CompileOptions {
  /// Which model of the file (empty: its only one).
  std::string model;
  /// Time steps per iteration of the time loops (0: the compiler's choice).
  unsigned unroll = 0;
  /// Threads a session runs on (0: every core, 1: the calling thread).
  unsigned threads = 0;
  std::string triple, cpu,
      features; // e.g. "x86_64-linux-gnu", "znver3", "+avx2"
  /// LLVM optimization level, 0-3.
  unsigned optLevel = 2;
  /// Store packed weights as bfloat16 (inference only).
  bool bf16Weights = false;
  /// Also compile the gradient and the training step (the model needs a
  /// `loss`), with its `train` settings overridden by these, as `loom train`
  /// flags name them without dashes: {"optimizer", "adam"}, {"lr", "0.01"}.
  bool training = false;
  std::map<std::string, std::string> trainSettings;
  /// Where compiled objects are cached across processes (empty: the
  /// LOOM_CACHE_DIR environment variable, or no cache).
  std::string cacheDir;
};

/// The phases of compilation whose IR a module keeps (`loom compile
/// --emit=`'s names).
enum class Phase { AST, Loom, Linalg, LLVMDialect, LLVMIR, Asm };

/// One input or output of the model.
struct PortInfo {
  std::string name;
  ElementType type = ElementType::F32;
  /// Declared sizes: numbers ("7") or run-time size names ("T", "B").
  std::vector<std::string> dims;
  /// For a recurrent state: inputs name the output they are fed from
  /// while streaming, outputs name the input they feed (else empty).
  std::string state;
};

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
};

class Session;

/// A compiled model. Immutable: share it between threads and sessions.
class LOOM_API Module {
public:
  static Expected<std::shared_ptr<const Module>>
  compileFile(const std::string &path, const CompileOptions &options = {});
  /// `bufferName` is the file name diagnostics show.
  static Expected<std::shared_ptr<const Module>>
  compileString(const std::string &source, const CompileOptions &options = {},
                const std::string &bufferName = "<string>");
  ~Module();

  const std::string &name() const;
  const std::vector<PortInfo> &inputs() const;
  const std::vector<PortInfo> &outputs() const;
  const std::vector<ParameterInfo> &parameters() const;
  /// The IR after `phase` as `loom compile --emit` prints it (Asm: the
  /// assembly of the JIT's code).
  const std::string &ir(Phase phase) const;
  /// The optimization remarks (`loom compile --remarks`), one per line.
  const std::string &remarks() const;
  /// Whether compiled with CompileOptions::training.
  bool hasTraining() const;
  /// Whether this module's code came from the compile cache.
  bool fromCache() const;

  struct Impl;
  const Impl &impl() const { return *pimpl; }

private:
  Module();
  std::unique_ptr<Impl> pimpl;
};

/// The mutable side of a model: weights, recurrent state, scratch space.
/// Not thread-safe: one thread at a time per session.
class LOOM_API Session {
public:
  explicit Session(std::shared_ptr<const Module> module);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  const Module &module() const { return *mod; }
  /// Threads this session runs on (0: every core).
  void setThreads(unsigned threads);

  // Weights. Parameters are copied in; they live in the session.
  /// Reads every parameter from a safetensors file (F32, F16 or BF16;
  /// extra tensors are ignored, so a training checkpoint loads).
  Result loadWeights(const std::string &path);
  Result setParameter(const std::string &name, const float *data,
                      const std::vector<int64_t> &shape);
  /// Copies parameter `name` into `data`, which holds `count` floats.
  Result getParameter(const std::string &name, float *data, size_t count) const;
  /// Writes every parameter to a safetensors file.
  Result saveWeights(const std::string &path) const;

  // Inference on whole sequences: inputs and outputs in declaration order.
  /// The shapes run() will write for these inputs.
  Expected<std::vector<std::vector<int64_t>>>
  outputShapes(const std::vector<TensorRef> &inputs) const;
  Result run(const std::vector<TensorRef> &inputs,
             const std::vector<TensorRef> &outputs);

  // Streaming. step() takes the model's inputs except its recurrent states
  // and writes its outputs except their final states, in declaration order;
  // the session keeps the states and feeds them back on the next call.
  // After the first call with given sizes, a step allocates nothing.
  Result step(const std::vector<TensorRef> &inputs,
              const std::vector<TensorRef> &outputs);
  /// Zeros every state (and forgets its batch size).
  void resetState();
  /// The shape of state input `name` (empty before the first step).
  Expected<std::vector<int64_t>> stateShape(const std::string &name) const;
  Result getState(const std::string &name, float *data, size_t count) const;
  /// Sets a state (it must have the state input's declared shape); the
  /// next step() must then use the same batch size.
  Result setState(const std::string &name, const float *data,
                  const std::vector<int64_t> &shape);

  // Training (a module compiled with CompileOptions::training). Inputs are
  // by name, as the model declares them; absent recurrent states are zeros.
  using NamedInputs = std::vector<std::pair<std::string, TensorRef>>;
  /// The loss and its gradient for every parameter (read with gradient()).
  Expected<float> computeGradients(const NamedInputs &inputs);
  Result gradient(const std::string &name, float *data, size_t count) const;
  /// One optimizer step (the model's `train` settings, learning rate
  /// constant); returns the loss before the update.
  Expected<float> trainStep(const NamedInputs &inputs);
  /// Optimizer steps taken (Adam's bias corrections count from it).
  int64_t stepsTaken() const;

  struct Impl;

private:
  std::shared_ptr<const Module> mod;
  std::unique_ptr<Impl> pimpl;
};

} // namespace loom

#endif // LOOM_LOOM_HPP
