//===- Jit.h - JIT-compiled model functions ---------------------*- C++ -*-===//
//
// Compiles a loom model function through every phase to native code with
// ORC (mlir::ExecutionEngine) and calls it on caller-owned buffers.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_JIT_H
#define LOOM_CODEGEN_JIT_H

#include "codegen/Pipeline.h"
#include "runtime/Memory.h"
#include "runtime/ThreadPool.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"

#include "llvm/ExecutionEngine/Orc/LLJIT.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom {

/// A dense row-major buffer owned by the caller.
struct BufferRef {
  void *data;
  std::vector<int64_t> shape;
};

/// How a model function lowered by loomToLinalgPipeline takes its
/// arguments: the model's inputs, its parameters (names in order), the
/// packed weights, then the outputs, each a memref descriptor. Shared by
/// the JIT and the ahead-of-time header (AotHeader.h).
struct CallLayout {
  std::string entry; // the C-interface function, "_mlir_ciface_<Model>"
  std::vector<std::string> params;
  std::vector<unsigned> ranks; // of every argument, in order
  unsigned inputCount = 0, outputCount = 0;
  // The pack function, if any: which parameters it takes (indices into
  // params), its argument ranks, and the packed tensors' shapes and sizes.
  std::string packEntry;
  std::vector<unsigned> packParams;
  std::vector<unsigned> packRanks;
  std::vector<std::vector<int64_t>> packedShapes;
  std::vector<int64_t> packedFloats;
};

/// The layout of `funcName` in `lowered` (after loomToLinalgPipeline).
bool describeLowered(mlir::ModuleOp lowered, llvm::StringRef funcName,
                     CallLayout &out, std::string &error);

/// A compiled model function. After compile() it is immutable: its const
/// methods may be called from any number of threads at once, each with its
/// own Frame and Packed weights (the embedding API's sessions). The non-const
/// run/setWeights/runPrepacked keep one such state inside, for the tools.
class JitModel : private CallLayout {
public:
  /// Compiles the model `funcName` of `module` (in the loom dialect; the
  /// module is cloned, not modified).
  /// With `target.cacheDir`, the object code is read from the cache when
  /// an entry for the same key exists (and is intact), else compiled and
  /// stored there.
  static std::unique_ptr<JitModel> compile(mlir::ModuleOp module,
                                           llvm::StringRef funcName,
                                           const TargetOptions &target,
                                           std::string &error);
  ~JitModel();

  /// Whether the code came from the compile cache.
  bool fromCache() const { return cached; }

  /// Names of the parameters, in the order run() takes them.
  const std::vector<std::string> &parameterNames() const { return params; }

  /// The arguments of one call of the model, as memref descriptors: built
  /// once, refilled by set() on every call without allocating. Arguments
  /// are the model's inputs, its parameters, the packed weights and the
  /// outputs, in this order.
  class Frame {
  public:
    // Movable, not copyable: the argument pointers point into the frame's
    // own descriptor storage (a move keeps that storage, a copy would not).
    Frame() = default;
    Frame(Frame &&) = default;
    Frame &operator=(Frame &&) = default;
    Frame(const Frame &) = delete;
    Frame &operator=(const Frame &) = delete;

    /// Argument `i` is the dense row-major buffer `data` of `shape` (the
    /// argument's rank entries).
    void set(unsigned i, void *data, const int64_t *shape);
    unsigned size() const { return unsigned(ranks.size()); }
    unsigned rank(unsigned i) const { return ranks[i]; }

  private:
    friend class JitModel;
    std::vector<unsigned> ranks, offsets;
    std::vector<int64_t> desc;
    std::vector<void *> ptrs, args;
  };
  unsigned numInputs() const { return inputCount; }
  unsigned numOutputs() const { return outputCount; }
  /// A frame for the model (with its packed-weight arguments unset).
  Frame frame() const { return makeFrame(ranks); }

  /// The packed forms of a set of weights (transposed matrices, see
  /// loom-split-weight-packing), computed by pack().
  struct Packed {
    std::vector<BufferRef> buffers;
    std::vector<std::vector<float, LongLivedAllocator<float>>> storage;
  };
  /// Packs `weights` (in parameterNames() order) into `out`.
  bool pack(const std::vector<BufferRef> &weights, Packed &out,
            std::string &error) const;
  /// Sets `f`'s weight arguments: `weights` and their packed forms.
  void bindWeights(Frame &f, const std::vector<BufferRef> &weights,
                   const Packed &packed) const;
  /// Calls the model with every argument of `f` set, on `pool` (null:
  /// the calling thread only). Allocates nothing itself.
  void call(Frame &f, ThreadPool *pool) const;

  /// Runs the model. `inputs` and `outputs` follow the model's declaration
  /// order; `weights` the order of parameterNames(). Shapes must already be
  /// checked (see runtime/ModelBinding.h); outputs must be allocated.
  /// Packs the weights first (setWeights), every call.
  bool run(const std::vector<BufferRef> &inputs,
           const std::vector<BufferRef> &weights,
           const std::vector<BufferRef> &outputs, std::string &error);

  /// Remembers `weights` (which must stay alive and unchanged until the next
  /// setWeights) and computes their packed forms once.
  bool setWeights(const std::vector<BufferRef> &weights, std::string &error);

  /// Runs the compiled code on `threads` threads (0: every core, the
  /// default; 1: only the calling thread). Results do not depend on it.
  void setThreads(unsigned threads);
  unsigned threads() const { return pool ? pool->size() : 1; }

  /// Runs the model with the weights of the last setWeights.
  bool runPrepacked(const std::vector<BufferRef> &inputs,
                    const std::vector<BufferRef> &outputs, std::string &error);

private:
  static Frame makeFrame(const std::vector<unsigned> &ranks);
  static bool fill(Frame &f, unsigned first,
                   const std::vector<BufferRef> &buffers, std::string &error);
  using PackedFn = void (*)(void **);
  static void call(Frame &f, ThreadPool *pool, PackedFn fn);
  void writePerfMap();
  // The compile cache (Jit.cpp): what an entry holds besides the object.
  static std::string cacheKey(mlir::ModuleOp module, llvm::StringRef funcName,
                              const TargetOptions &target,
                              const llvm::TargetMachine &tm);
  bool loadCached(const std::string &path, const std::string &digest);
  void storeCached(const std::string &path, const std::string &dir) const;
  std::string serializeMeta() const;
  bool parseMeta(llvm::StringRef json);
  bool loadObject(std::unique_ptr<llvm::MemoryBuffer> object,
                  std::string &error);

  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> cachedJit; // code from the cache
  bool cached = false;
  std::string cacheDigest;
  PackedFn entryFn = nullptr, packFn = nullptr;
  // The state run/setWeights/runPrepacked use.
  std::unique_ptr<ThreadPool> pool; // null: single-threaded
  Packed ownPacked;
  std::vector<BufferRef> currentWeights;
};

} // namespace loom

#endif
