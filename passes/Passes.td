//===- Passes.td - loom-level transformations --------------*- tablegen -*-===//
#ifndef LOOM_PASSES_TD
#define LOOM_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomDifferentiate : Pass<"loom-differentiate", "mlir::ModuleOp"> {
  let summary = "derive the gradient of a model's loss by reverse-mode autodiff";
  let description = [{
    For every `<Model>_loss` function (marked `loom.loss`, returning a scalar
    loss), builds `<Model>_grad` (marked `loom.grad`) returning the loss and
    then d loss / d param for every parameter, named by the parameter.

    Each op's rule comes from its `DifferentiableOpInterface`, so any cell
    built from loom ops is differentiable. A `loom.scan` gets a backward
    scan over the reversed time: the forward scan also saves the state that
    enters each step, and the backward step recomputes the forward step from
    it and applies the body's rules, carrying the state adjoints and summing
    the adjoints of values the body captures (parameters). With lengths, the
    adjoints of inactive steps pass through unchanged, as the states do.

    Example: `loom-opt -loom-differentiate` on
    ```mlir
    func.func @M_loss(%x: tensor<?x8xf32>, %t: tensor<?xi64>) -> tensor<f32> attributes {loom.loss} {
      %w = loom.param "fc.weight" : tensor<4x8xf32>
      %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
      %l = loom.cross_entropy %y, %t : tensor<?x4xf32>, tensor<?xi64> -> tensor<f32>
      return %l : tensor<f32>
    }
    ```
    adds `@M_grad(%x, %t) -> (tensor<f32>, tensor<4x8xf32>)` whose second
    result is `loom.linear_weight_grad` of `loom.cross_entropy_grad`.
  }];
  let dependentDialects = ["::loom::LoomDialect", "::mlir::func::FuncDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif
