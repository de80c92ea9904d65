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

class JitModel {
public:
  /// Compiles the model `funcName` of `module` (in the loom dialect; the
  /// module is cloned, not modified).
  static std::unique_ptr<JitModel> compile(mlir::ModuleOp module,
                                           llvm::StringRef funcName,
                                           const TargetOptions &target,
                                           std::string &error);

  /// Names of the parameters, in the order run() takes them.
  const std::vector<std::string> &parameterNames() const { return params; }

  /// Runs the model. `inputs` and `outputs` follow the model's declaration
  /// order; `weights` the order of parameterNames(). Shapes must already be
  /// checked (see runtime/ModelBinding.h); outputs must be allocated.
  /// Packs the weights first (setWeights), every call.
  bool run(const std::vector<BufferRef> &inputs,
           const std::vector<BufferRef> &weights,
           const std::vector<BufferRef> &outputs, std::string &error);

  /// Remembers `weights` (which must stay alive and unchanged until the next
  /// setWeights) and computes their packed forms (transposed matrices,
  /// see loom-split-weight-packing) once.
  bool setWeights(const std::vector<BufferRef> &weights, std::string &error);

  /// Runs the compiled code on `threads` threads (0: every core, the
  /// default; 1: only the calling thread). Results do not depend on it.
  void setThreads(unsigned threads);
  unsigned threads() const { return pool ? pool->size() : 1; }

  /// Runs the model with the weights of the last setWeights.
  bool runPrepacked(const std::vector<BufferRef> &inputs,
                    const std::vector<BufferRef> &outputs, std::string &error);

private:
  bool invoke(const std::string &fn, const std::vector<unsigned> &fnRanks,
              const std::vector<const BufferRef *> &all, std::string &error);
  void writePerfMap();

  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::unique_ptr<ThreadPool> pool; // null: single-threaded
  std::string entry;
  std::vector<std::string> params;
  std::vector<unsigned> ranks; // of every argument, in order
  // The pack function, if any: which parameters it takes (indices into
  // params), its argument ranks, and the packed tensors' shapes and storage.
  std::string packEntry;
  std::vector<unsigned> packParams;
  std::vector<unsigned> packRanks;
  std::vector<BufferRef> packed;
  std::vector<std::vector<float, LongLivedAllocator<float>>> packedData;
  std::vector<BufferRef> currentWeights;
};

} // namespace loom

#endif
