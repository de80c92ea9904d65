//===- Interpreter.h - reference interpreter of the loom dialect -*- C++
//-*-===//
//
// Evaluates loom ops directly on host arrays: no lowering, no JIT, no code
// shared with codegen. Slow and obviously correct; the oracle that compiled
// pipelines are tested against.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_REFERENCE_INTERPRETER_H
#define LOOM_REFERENCE_INTERPRETER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>
#include <string>
#include <vector>

namespace loom {
namespace reference {

/// A dense row-major array of f32 or i64 values.
struct Array {
  std::vector<int64_t> shape;
  bool isInt = false;
  std::vector<float> f;
  std::vector<int64_t> i;

  int64_t numElements() const;
  static Array floats(std::vector<int64_t> shape);
  std::string shapeString() const;
};

using ParamMap = std::map<std::string, Array>;

/// Runs the model function `func` on `inputs` (one per argument, in order)
/// with parameters looked up by name in `params`. On success fills `outputs`
/// (one per result) and returns true; otherwise sets `error` and returns
/// false. Never aborts on bad sizes or ids: they are reported as errors.
bool run(mlir::func::FuncOp func, const std::vector<Array> &inputs,
         const ParamMap &params, std::vector<Array> &outputs,
         std::string &error);

} // namespace reference
} // namespace loom

#endif
