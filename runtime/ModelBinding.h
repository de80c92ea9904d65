//===- ModelBinding.h - inputs and weights of a compiled model --*- C++ -*-===//
//
// Matches user-supplied tensors (inputs by name, weights from safetensors)
// against a model function and checks everything before anything runs:
// names, dtypes, ranks, sizes, run-time size names (T, B) agreeing across
// inputs, token ids within the vocabulary and lengths within 1..T. Errors
// are user-facing: they name the input or tensor with expected and found
// shapes.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_MODELBINDING_H
#define LOOM_RUNTIME_MODELBINDING_H

#include "runtime/SafeTensors.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>
#include <string>
#include <vector>

namespace loom {

/// One declared input or output of a model function.
struct ModelPort {
  std::string name;
  bool isInt = false;
  std::vector<std::string> dims; // "7", "T", ... (inputs only)
  std::string describe() const;  // e.g. "f32[T, B, 7]"
};

struct ModelSignature {
  std::vector<ModelPort> inputs;
  std::vector<ModelPort> outputs;
};

ModelSignature signatureOf(mlir::func::FuncOp func);

/// The single model function of a module, or an error if there are none or
/// several (then `name` picks one).
ErrorOr<mlir::func::FuncOp> findModel(mlir::ModuleOp module,
                                      const std::string &name = "");

/// Run-time size names bound so far: name -> (size, the input it came from).
using SizeBindings = std::map<std::string, std::pair<int64_t, std::string>>;

/// Checks one input's shape against its declaration (rank, fixed sizes,
/// run-time sizes at least 1 and agreeing with `sizes`, which it extends).
Status checkInputShape(const ModelPort &p, const std::vector<int64_t> &shape,
                       SizeBindings &sizes);

/// Orders `given` by the model's inputs and checks dtypes (i64 inputs also
/// take i32, converted), ranks, sizes and run-time size names.
ErrorOr<std::vector<Tensor>>
bindInputs(mlir::func::FuncOp func, const std::map<std::string, Tensor> &given);

/// Checks the values of bound inputs: token ids fed to an embedding lie in
/// [0, vocab) and lengths in 1..T.
Status checkInputValues(mlir::func::FuncOp func,
                        const std::vector<Tensor> &inputs);

/// One check of an integer input's values at given input shapes: token ids
/// within a vocabulary, targets within the classes (or ignore_index), or
/// lengths within 1..T with one per batch entry.
struct ValueCheck {
  enum Kind { TokenIds, Targets, Lengths } kind = TokenIds;
  int input = -1;             // which model input
  int64_t bound = 0;          // vocabulary, classes, or T
  int64_t ignore = 0;         // Targets: ignore_index
  int64_t batch = 0;          // Lengths: B
  std::vector<int64_t> shape; // of the input, for messages
  /// "[t, b]": the index of flat element `flat` in `shape`.
  std::string where(int64_t flat) const;
};

/// The value checks of `func`'s inputs at these input shapes (computed
/// once per shape; applying them allocates nothing unless one fails).
ErrorOr<std::vector<ValueCheck>>
valueChecksOf(mlir::func::FuncOp func,
              const std::vector<std::vector<int64_t>> &inputShapes);

/// Applies `checks`: `data[k]` and `counts[k]` are input k's int64 values
/// and element count (unused for other inputs).
Status applyValueChecks(const std::vector<ValueCheck> &checks,
                        const ModelSignature &sig, const int64_t *const *data,
                        const int64_t *counts);

/// A parameter of the model: name, shape and PyTorch-style initializer.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  std::string init;
};

/// Every distinct parameter of the model, in first-use order.
std::vector<ParamInfo> parametersOf(mlir::func::FuncOp func);

/// Looks up every parameter in `weights` by name and converts it to f32
/// (F32, F16 and BF16 accepted). Extra tensors are ignored.
ErrorOr<std::map<std::string, Tensor>>
bindWeights(mlir::func::FuncOp func, const SafeTensorsFile &weights);

/// The parameters' memory (as f32) against the memory limit
/// (runtime/Limits.h); the message names the largest parameter.
Status checkParameterMemory(mlir::func::FuncOp func);

/// A bound on the memory of one run of `func` at these input shapes
/// (every tensor of its top level, inputs, parameters and intermediates,
/// as if none were freed or fused) against the memory limit; the message
/// names the largest tensor and where the model makes it.
Status checkRunMemory(mlir::func::FuncOp func,
                      const std::vector<std::vector<int64_t>> &inputShapes);

/// Run-time shapes of every result: inferred from the input shapes.
ErrorOr<std::vector<std::vector<int64_t>>>
inferOutputShapes(mlir::func::FuncOp func,
                  const std::vector<std::vector<int64_t>> &inputShapes);

} // namespace loom

#endif
