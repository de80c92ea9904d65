//===- Jit.h - JIT-compiled model functions ---------------------*- C++ -*-===//
//
// Compiles a loom model function through every phase to native code with
// ORC (mlir::ExecutionEngine) and calls it on caller-owned buffers.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_JIT_H
#define LOOM_CODEGEN_JIT_H

#include "codegen/Pipeline.h"

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
  bool run(const std::vector<BufferRef> &inputs,
           const std::vector<BufferRef> &weights,
           const std::vector<BufferRef> &outputs, std::string &error);

private:
  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::string entry;
  std::vector<std::string> params;
  std::vector<unsigned> ranks; // of every argument, in order
};

} // namespace loom

#endif
