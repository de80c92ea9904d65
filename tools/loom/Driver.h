//===- Driver.h - what the loom subcommands share ---------------*- C++ -*-===//
//
// The loaded model, error reporting and the Runner that executes a model
// function with the JIT or the reference interpreter. Used by loom.cpp and
// Train.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TOOLS_LOOM_DRIVER_H
#define LOOM_TOOLS_LOOM_DRIVER_H

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "reference/Interpreter.h"
#include "runtime/ModelBinding.h"
#include "runtime/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom {

/// Prints "loom: error: MSG" and returns the exit code 1.
inline int fail(const llvm::Twine &msg) {
  llvm::WithColor::error(llvm::errs(), "loom") << msg << "\n";
  return 1;
}

/// A parsed and checked model: its source, context, module and function.
struct Loaded {
  mlir::MLIRContext context;
  std::unique_ptr<ParsedSource> source;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
};

inline reference::Array toArray(const Tensor &t) {
  reference::Array a;
  a.shape = t.shape;
  if (t.dtype == DType::I64) {
    a.isInt = true;
    a.i.assign(t.i64Data(), t.i64Data() + t.numElements());
  } else {
    a.f.assign(t.f32Data(), t.f32Data() + t.numElements());
  }
  return a;
}

/// Runs a loaded model on bound inputs with the chosen backend; compiled
/// once, run many times (any T and B).
class Runner {
public:
  /// `useJit` picks native code (compiled for `target`) or the reference
  /// interpreter.
  Runner(bool useJit, TargetOptions target)
      : useJit(useJit), target(std::move(target)) {}

  bool init(Loaded &m, std::map<std::string, Tensor> weights,
            std::string &error) {
    return init(*m.module, m.func, std::move(weights), error);
  }

  /// The bound parameters (and other named tensors such as optimizer
  /// state), by name; they may be replaced between runs.
  std::map<std::string, Tensor> &parameters() {
    weightsChanged = true;
    return params;
  }

  /// Runs `fn` of `module` (the model itself, or a function derived from
  /// it such as its gradient).
  bool init(mlir::ModuleOp module, mlir::func::FuncOp fn,
            std::map<std::string, Tensor> weights, std::string &error) {
    func = fn;
    params = std::move(weights);
    if (!useJit)
      return true;
    jit = JitModel::compile(module, fn.getName(), target, error);
    return jit != nullptr;
  }

  bool run(std::vector<Tensor> &inputs, std::vector<Tensor> &outputs,
           std::string &error) {
    outputs.clear();
    // Whether the run fits in memory, once per set of input shapes.
    std::vector<std::vector<int64_t>> inShapes;
    for (const Tensor &t : inputs)
      inShapes.push_back(t.shape);
    if (inShapes != checkedShapes) {
      Status st = checkRunMemory(func, inShapes);
      if (!st.ok()) {
        error = st.error();
        return false;
      }
      checkedShapes = inShapes;
    }
    if (!jit) {
      refParams.clear();
      for (const auto &[name, t] : params)
        refParams[name] = toArray(t);
      std::vector<reference::Array> in, out;
      for (const Tensor &t : inputs)
        in.push_back(toArray(t));
      if (!reference::run(func, in, refParams, out, error))
        return false;
      for (const reference::Array &a : out)
        outputs.push_back(Tensor::f32(a.shape, a.f));
      return true;
    }
    auto outShapes = inferOutputShapes(func, inShapes);
    if (!outShapes) {
      error = outShapes.error();
      return false;
    }
    std::vector<BufferRef> inBufs, outBufs;
    for (Tensor &t : inputs)
      inBufs.push_back({t.data.data(), t.shape});
    if (weightsChanged) {
      // Packed (transposed) weights are computed once per set of weights.
      std::vector<BufferRef> weightBufs;
      for (const std::string &name : jit->parameterNames()) {
        Tensor &t = params[name];
        weightBufs.push_back({t.data.data(), t.shape});
      }
      if (!jit->setWeights(weightBufs, error))
        return false;
      weightsChanged = false;
    }
    for (const auto &shape : *outShapes)
      outputs.push_back(Tensor::zeros(DType::F32, shape));
    for (Tensor &t : outputs)
      outBufs.push_back({t.data.data(), t.shape});
    return jit->runPrepacked(inBufs, outBufs, error);
  }

private:
  bool useJit;
  bool weightsChanged = true;
  TargetOptions target;
  mlir::func::FuncOp func;
  std::map<std::string, Tensor> params;
  reference::ParamMap refParams;
  std::unique_ptr<JitModel> jit;
  std::vector<std::vector<int64_t>> checkedShapes;
};

/// Initial values of every parameter of `func` by PyTorch's rules (see
/// docs/rationale.md: the rules, not PyTorch's random stream).
std::vector<std::pair<std::string, Tensor>>
initialParameters(mlir::func::FuncOp func, uint64_t seed);

} // namespace loom

#endif // LOOM_TOOLS_LOOM_DRIVER_H
