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

def LoomFuseGateMatmuls : Pass<"loom-fuse-gate-matmuls", "mlir::ModuleOp"> {
  let summary = "fuse the step matmuls that share an operand into one matmul";
  let description = [{
    In a `loom.scan` body, the `loom.linear`s that multiply the same value —
    the step input `x_t`, a state `h_{t-1}`, or any other — by weights
    defined outside the scan (parameters) become one `loom.linear` by those
    weights concatenated along their output dimension, followed by a
    `loom.split` giving back each original result (parts of unequal sizes
    are split at their sizes' gcd and joined back with `loom.concat`). A
    cell written per gate, such as an LSTM with `i = sigmoid(Wi @ x + Ui @ h
    + bi)` and separate `Wf`, `Wg`, `Wo`, `U*`, then does one matmul of `x`
    and one of `h` per step, like the built-in cells whose weights are
    already stacked. Works for any cell.

    The concatenated weight `transpose(concat(transpose(W_k)))` (loom.concat
    joins last dimensions) is computed before the scan from parameters only,
    so `loom-split-weight-packing` moves it into the pack function that runs
    once when the weights are set. Run before `loom-hoist-input-projection`,
    which then hoists the fused x-matmul as one matmul over all steps, and
    before `loom-differentiate`: the concat, split and transposes have
    autodiff rules, and a weight used by several fused matmuls (tied
    weights) gets the sum of its parts' adjoints. Each output element is the
    same sum in the same order, so results are bit-identical.

    Matmuls of different operands, single matmuls, and matmuls by weights
    computed inside the body are left alone. Each fusion is reported as an
    optimization remark at the first matmul.

    Example: in the body,
    ```mlir
    %a = loom.linear %x, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %b = loom.linear %x, %wf : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    ```
    becomes, with `%w = loom.transpose (loom.concat ...)` of `tensor<32x8xf32>`
    before the scan,
    ```mlir
    %ab = loom.linear %x, %w : tensor<?x8xf32>, tensor<32x8xf32> -> tensor<?x32xf32>
    %a, %b = loom.split %ab : tensor<?x32xf32> -> tensor<?x16xf32>, tensor<?x16xf32>
    ```
  }];
  let dependentDialects = ["::loom::LoomDialect"];
}

def LoomHoistInputProjection
    : Pass<"loom-hoist-input-projection", "mlir::ModuleOp"> {
  let summary = "compute the input matmuls of all time steps before the time loop";
  let description = [{
    In a `loom.scan` body, a `loom.linear` of an input step slice `x_t` by a
    weight defined outside the scan does not depend on the recurrence. It
    is replaced by one `loom.linear` of the whole `[T, B, I]` input sequence
    before the scan — a `[T·B, I] × [I, G]` matmul that reads the weight
    once instead of once per step — whose `[T, B, G]` result becomes a new
    scan input. Works for any cell. Run before `loom-differentiate`, the
    hoisted matmul's weight gradient is one matmul over all steps too (as
    oneDNN's `merge_gemm_iter`).

    Example: the body's `%a = loom.linear %x, %wi` becomes, before the scan,
    `%xw = loom.linear %xs, %wi : tensor<?x?x8xf32>, ... -> tensor<?x?x16xf32>`
    and the body uses the slice of `%xw` instead.
  }];
  let dependentDialects = ["::loom::LoomDialect"];
}

def LoomMergeWeightGradients
    : Pass<"loom-merge-weight-gradients", "mlir::ModuleOp"> {
  let summary = "sum a scan's per-step weight gradients in one matmul after it";
  let description = [{
    Run after `loom-differentiate`. A `loom.scan` state `acc` whose body only
    does `acc + loom.linear_weight_grad(dy_t, x_t)` (the backward scan's
    accumulation of a recurrent weight's gradient, one `[G, B] × [B, H]`
    product per step that reads and writes all of `[G, H]`) stops being a
    state: the scan instead outputs `dy_t` and `x_t` stacked over time
    (reusing an output or input sequence that already holds them), and one
    `loom.linear_weight_grad` over all `T·B` rows after the scan — a single
    `[G, T·B] × [T·B, H]` matmul, as oneDNN's `merge_gemm_iter` — is added
    to the state's initial value. With `lengths`, outputs of inactive steps
    are 0, so their products still vanish; a term both of whose factors are
    input slices is then left alone.

    Example: the backward state `%gw` with
    `%g = loom.linear_weight_grad %dy, %h` and `%gw1 = loom.add %gw, %g`
    in the body becomes `%dys, ...= loom.scan ...` (outputting `%dy`) and
    `loom.add %gw0, (loom.linear_weight_grad %dys, %hs)` after it.
  }];
  let dependentDialects = ["::loom::LoomDialect"];
}

def LoomTrainStep : Pass<"loom-train-step", "mlir::ModuleOp"> {
  let summary = "build the training step: gradient, clipping and optimizer update";
  let description = [{
    For every `<Model>_grad` (from `loom-differentiate`), builds
    `<Model>_step` (marked `loom.step`): the loss and gradients, then the
    L1 penalty, `clip_grad_norm_` and one optimizer update, with PyTorch's
    formulas (torch.optim.SGD, Adam and AdamW, single-tensor versions).

    The structure of the update (optimizer, momentum, Nesterov, clipping,
    penalties) is fixed by the pass options; the numbers are rank-0 `f32`
    arguments named after them, so the learning rate, bias corrections and
    the first step's momentum can change between calls without
    recompiling:

    | optimizer | scalar arguments |
    |---|---|
    | every one | `lr`, plus `weight_decay` (with `weight-decay`), `max_norm` (with `clip`), `l1` (with `l1`) |
    | `sgd` with `momentum` | `momentum`, `momentum_decay` (0 on the first step, else `momentum`), `momentum_scale` (1 on the first step, else `1 - dampening`) |
    | `adam`, `adamw` | `beta1`, `one_minus_beta1`, `beta2`, `one_minus_beta2`, `eps`, `step_size` (`lr / (1 - beta1^t)`), `bias_correction2_sqrt` (`√(1 - beta2^t)`); `adamw` also `decay` (`1 - lr·weight_decay`) |

    Optimizer state tensors are `loom.param`s named
    `optimizer.<param>.momentum_buffer`, `.exp_avg` and `.exp_avg_sq`, so they
    become arguments like the parameters. Results: `loss` (with the L1
    penalty), `grad_norm` (with `clip`: the norm before clipping), the new
    value of every parameter and state tensor (named like them), and the
    carried recurrent states.
  }];
  let options = [
    Option<"optimizer", "optimizer", "std::string", "\"sgd\"",
           "sgd, adam or adamw">,
    Option<"momentum", "momentum", "bool", "false",
           "sgd: keep a momentum buffer">,
    Option<"nesterov", "nesterov", "bool", "false",
           "sgd: Nesterov momentum">,
    Option<"weightDecay", "weight-decay", "bool", "false",
           "L2 weight decay (decoupled for adamw)">,
    Option<"clip", "clip", "bool", "false",
           "clip the global gradient norm to `max_norm`">,
    Option<"l1", "l1", "bool", "false",
           "add `l1` · Σ|param| to the loss">,
  ];
  let dependentDialects = ["::loom::LoomDialect", "::mlir::func::FuncDialect",
                           "::mlir::arith::ArithDialect"];
}

def LoomUnrollTime : Pass<"loom-unroll-time", "mlir::func::FuncOp"> {
  let summary = "unroll the time loops by a factor, with an epilogue loop";
  let description = [{
    Unrolls every `scf.for` marked `loom.time_loop` — the loop over time
    steps that `convert-loom-to-linalg` makes of a `loom.scan`, forward or
    reverse (so the backward scans of a gradient too) — by `factor`: the
    main loop runs `factor` steps per iteration and an epilogue loop the
    remaining `T mod factor`, so T stays a run-time size and the code size
    does not depend on it. The steps are computed as before, so results do
    not change. The loops are marked `loom.unrolled = N` (1 on the
    epilogue) and not unrolled again.

    `factor = 0` (the default) lets the compiler choose per loop: 2 for a
    small step — one whose loop-invariant tensors (its weights) have at
    most 32768 elements, in at most 400 operations — else 1 (measured; see
    docs/rationale.md, "Performance"). `factor = 1` changes nothing. `loom
    compile|run|train|grad --unroll=N` sets the factor. Each unrolled loop
    is reported as an optimization remark at its scan.
  }];
  let options = [
    Option<"factor", "factor", "unsigned", "0",
           "time steps per iteration (0: the compiler's choice)">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif
