//===- Passes.h - loom-level transformations --------------------*- C++ -*-===//
#ifndef LOOM_PASSES_PASSES_H
#define LOOM_PASSES_PASSES_H

#include "ir/LoomDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace loom {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// The loom-level passes that build `<M>_grad` from `<M>_loss`: gate fusion
/// and input hoisting first (so that the gradient inherits them), autodiff,
/// then one weight-gradient matmul per backward scan state.
constexpr const char *kGradientPipeline =
    "loom-fuse-gate-matmuls,loom-hoist-input-projection,loom-differentiate,"
    "loom-merge-weight-gradients";

/// The unroll factor loom-unroll-time picks for a time loop when none is
/// given (docs/rationale.md, "Performance").
unsigned defaultTimeUnrollFactor(mlir::Operation *timeLoop);

} // namespace loom

#endif
