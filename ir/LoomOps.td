//===- LoomOps.td - ops of the loom dialect ----------------*- tablegen -*-===//
//
// Every op of the `loom` dialect, with its summary, description, example and
// verifier hook. The reference docs in docs/dialect.md are generated from here.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_OPS_TD
#define LOOM_OPS_TD

include "ir/LoomDialect.td"
include "ir/LoomInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/BuiltinAttributes.td"

def Loom_FloatTensor : RankedTensorOf<[F32]>;
defvar Loom_Differentiable =
    DeclareOpInterfaceMethods<Loom_DifferentiableOpInterface>;
def Loom_IdTensor : RankedTensorOf<[I64, I32]>;
def Loom_KeyTensor : 1DTensorOf<[I64]>;

//===----------------------------------------------------------------------===//
// Parameters and constants
//===----------------------------------------------------------------------===//

def Loom_ParamOp : Loom_Op<"param", [Pure]> {
  let summary = "a named, statically shaped model parameter";
  let description = [{
    Yields the parameter called `name`. The runtime binds it by that name to a
    tensor of the weights file (PyTorch `state_dict` names). Two `loom.param`
    ops with the same name denote the same parameter (tied weights) and must
    have the same type.

    Example:
    ```mlir
    %w = loom.param "rnn.weight_ih_l0" : tensor<64x8xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Loom_ZerosOp : Loom_Op<"zeros", [Pure]> {
  let summary = "a tensor of zeros with run-time sizes";
  let description = [{
    Creates a tensor filled with 0.0. One `index` operand gives each dynamic
    dimension of the result type, in order. Used for absent initial states,
    whose batch size is known only at run time.

    Example:
    ```mlir
    %h0 = loom.zeros %b : tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Variadic<Index>:$sizes);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$sizes attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def Loom_LinearOp : Loom_Op<"linear", [Pure, Loom_Differentiable]> {
  let summary = "multiply by a transposed weight matrix: y = x · Wᵀ";
  let description = [{
    Computes `y[..., o] = Σ_i x[..., i] · W[o, i]` for an input of any rank ≥ 1
    and a weight `W` of shape `[O, I]`, the layout of PyTorch's `nn.Linear`
    and of the RNN `weight_ih`/`weight_hh` matrices. In a cell, the DSL's
    `W @ x` becomes this op on the batched `x`. Bias is a separate `loom.add`.

    Example:
    ```mlir
    %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<64x8xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$weight);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Loom_BinaryOp<string mnemonic, string math,
                    list<Trait> extra = [Loom_Differentiable]>
    : Loom_Op<mnemonic, !listconcat([Pure], extra)> {
  let summary = "elementwise " # math # " with trailing-dimension broadcasting";
  let description = [{
    Elementwise `}] # math # [{` of two float tensors. The operands are aligned on
    their trailing dimensions; the lower-rank operand (a bias `[H]`, or a
    rank-0 scalar) is repeated over the leading dimensions of the other.
    Aligned dimensions must be equal (no size-1 stretching).

    Example:
    ```mlir
    %r = loom.}] # mnemonic # [{ %a, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$lhs, Loom_FloatTensor:$rhs);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_AddOp : Loom_BinaryOp<"add", "addition">;
def Loom_SubOp : Loom_BinaryOp<"sub", "subtraction">;
def Loom_MulOp : Loom_BinaryOp<"mul", "multiplication">;
def Loom_DivOp : Loom_BinaryOp<"div", "division">;
// Used by the optimizer update (gradient clipping), after differentiation.
def Loom_MinimumOp : Loom_BinaryOp<"minimum", "minimum", []>;

class Loom_UnaryOp<string mnemonic, string math,
                   list<Trait> extra = [Loom_Differentiable]>
    : Loom_Op<mnemonic, !listconcat([Pure, SameOperandsAndResultType], extra)> {
  let summary = "elementwise " # math;
  let description = [{
    Applies `}] # math # [{` to every element.

    Example:
    ```mlir
    %r = loom.}] # mnemonic # [{ %a : tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Loom_SigmoidOp : Loom_UnaryOp<"sigmoid", "the logistic sigmoid 1 / (1 + exp(-x))">;
def Loom_TanhOp : Loom_UnaryOp<"tanh", "the hyperbolic tangent">;
def Loom_ReluOp : Loom_UnaryOp<"relu", "max(x, 0)">;
def Loom_ExpOp : Loom_UnaryOp<"exp", "the exponential">;
def Loom_NegOp : Loom_UnaryOp<"neg", "negation">;
def Loom_RsqrtOp : Loom_UnaryOp<"rsqrt", "the reciprocal square root">;
def Loom_SqrtOp : Loom_UnaryOp<"sqrt", "the square root">;
def Loom_AbsOp : Loom_UnaryOp<"abs", "the absolute value">;
// The derivative of sign is zero wherever it exists; it only appears in
// the optimizer update (the L1 penalty's gradient), after differentiation.
def Loom_SignOp : Loom_UnaryOp<"sign", "the sign (-1, 0 or 1)", []>;

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

def Loom_SplitOp : Loom_Op<"split", [Pure, Loom_Differentiable]> {
  let summary = "split the last dimension into equal parts";
  let description = [{
    Splits the last dimension of the input into as many equal, contiguous
    parts as the op has results. This is how the gates of a fused gate matmul
    are taken apart (`i, f, g, o` of an LSTM).

    Example:
    ```mlir
    %i, %f = loom.split %x : tensor<?x32xf32> -> tensor<?x16xf32>, tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Variadic<Loom_FloatTensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def Loom_ConcatOp : Loom_Op<"concat", [Pure, Loom_Differentiable]> {
  let summary = "concatenate along the last dimension";
  let description = [{
    Concatenates tensors of equal rank along their last dimension; the other
    dimensions must agree.

    Example:
    ```mlir
    %y = loom.concat %a, %b : tensor<?x?x16xf32>, tensor<?x?x16xf32> -> tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins Variadic<Loom_FloatTensor>:$inputs);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
}

def Loom_StackOp : Loom_Op<"stack", [Pure, Loom_Differentiable]> {
  let summary = "stack equally shaped tensors along a new leading dimension";
  let description = [{
    Stacks N tensors of the same type into one with a new leading dimension of
    size N. Final states of all layers and directions are stacked this way into
    PyTorch's `[layers·directions, B, H]` layout.

    Example:
    ```mlir
    %s = loom.stack %h0, %h1 : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<2x?x16xf32>
    ```
  }];
  let arguments = (ins Variadic<Loom_FloatTensor>:$inputs);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
}

def Loom_IndexOp : Loom_Op<"index", [Pure, Loom_Differentiable]> {
  let summary = "take one slice along the leading dimension";
  let description = [{
    Returns `input[index]`, dropping the leading dimension: one layer's state
    out of a `[layers·directions, B, H]` state tensor.

    Example:
    ```mlir
    %h = loom.index %s[1] : tensor<2x?x16xf32> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, I64Attr:$index);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `[` $index `]` attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_TransposeOp : Loom_Op<"transpose", [Pure, Loom_Differentiable]> {
  let summary = "permute dimensions";
  let description = [{
    Permutes the dimensions of the input: result dimension `i` is input
    dimension `permutation[i]`. `batch_first` layers swap the two leading
    dimensions with it.

    Example:
    ```mlir
    %y = loom.transpose %x [1, 0, 2] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input $permutation attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

def Loom_EmbeddingOp : Loom_Op<"embedding", [Pure, Loom_Differentiable]> {
  let summary = "look up rows of an embedding table";
  let description = [{
    `result[..., e] = weight[ids[...], e]`, as `nn.Embedding`. Ids must lie in
    `[0, V)`; the runtime checks model inputs before running.

    Example:
    ```mlir
    %x = loom.embedding %ids, %w : tensor<?x?xi64>, tensor<100x16xf32> -> tensor<?x?x16xf32>
    ```
  }];
  let arguments = (ins Loom_IdTensor:$ids, Loom_FloatTensor:$weight);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $ids `,` $weight attr-dict `:` type($ids) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_LayerNormOp : Loom_Op<"layernorm", [Pure, Loom_Differentiable]> {
  let summary = "layer normalization over the last dimension";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * weight + bias` over the last dimension,
    with the biased variance, as `nn.LayerNorm(F)`.

    Example:
    ```mlir
    %y = loom.layernorm %x, %w, %b {epsilon = 1.0e-05 : f32}
        : tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$weight,
                       Loom_FloatTensor:$bias,
                       DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias attr-dict `:` type($input) `,` type($weight) `,`
    type($bias) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_SoftmaxOp : Loom_Op<"softmax", [Pure, SameOperandsAndResultType,
                                          Loom_Differentiable]> {
  let summary = "softmax over the last dimension";
  let description = [{
    `exp(x - max) / Σ exp(x - max)` over the last dimension.

    Example:
    ```mlir
    %p = loom.softmax %x : tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Loom_LogSoftmaxOp
    : Loom_Op<"log_softmax", [Pure, SameOperandsAndResultType,
                              Loom_Differentiable]> {
  let summary = "log-softmax over the last dimension";
  let description = [{
    `x - max - log Σ exp(x - max)` over the last dimension.

    Example:
    ```mlir
    %p = loom.log_softmax %x : tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Loom_DropoutOp : Loom_Op<"dropout", [Pure, AllTypesMatch<["input", "result"]>,
                                          Loom_Differentiable]> {
  let summary = "dropout: the identity at inference, a counter-based mask in training";
  let description = [{
    Without `key`, the identity (inference). With `key` — a `tensor<2xi64>`
    holding `[seed, step]` — training-mode dropout: element `n` (row-major
    linear index) is kept iff `u ≥ p`, where `u` is the top 24 bits of the
    first word of Philox4x32-10 with key `seed` (two 32-bit halves) and
    counter `(n mod 2³², n div 2³², stream, step)`, divided by 2²⁴; kept
    elements are scaled by `1 / (1 - p)`. The mask is a pure function of
    `(seed, step, stream, n)`, so the backward pass recomputes it instead of
    storing it, and a run is reproducible for any thread count. A negative
    seed turns dropout off (the identity), which is how `loom grad` runs
    deterministically. `stream` tells the dropout ops of one model apart.

    Example:
    ```mlir
    %y = loom.dropout %x {p = 2.000000e-01 : f32} : tensor<?x?x16xf32>
    %z = loom.dropout %x key(%k : tensor<2xi64>) {p = 2.000000e-01 : f32, stream = 3 : i64} : tensor<?x?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Optional<Loom_KeyTensor>:$key,
                       F32Attr:$p, DefaultValuedAttr<I64Attr, "0">:$stream);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`key` `(` $key^ `:` type($key) `)`)? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// The time loop
//===----------------------------------------------------------------------===//

def Loom_ScanOp : Loom_Op<"scan", [RecursiveMemoryEffects,
                                    AttrSizedOperandSegments]> {
  let summary = "run a recurrent step over the time dimension";
  let description = [{
    Runs its body once per time step `t` of the `[T, B, ...]` sequences
    `inputs`, forwards (`t = 0 … T-1`) or, with `reverse`, backwards. The body
    receives the step slices `inputs[t]` (`[B, ...]`) and then the current
    states (initially `inits`), and yields the step's outputs followed by the
    new states. The op returns each output stacked over time (`[T, B, ...]`)
    followed by the final states.

    With `lengths` (`[B]` integers in `1..T`), batch entry `b` takes part only
    in steps `t < lengths[b]`: at other steps its states are carried unchanged
    and its outputs are 0. Final states are therefore taken at each sequence's
    own last step, and a reverse scan starts at each sequence's last step, as
    PyTorch does for packed sequences.

    Example (a tanh RNN):
    ```mlir
    %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x16xf32>) {
    ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x16xf32>):
      %a = loom.linear %x, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
      %b = loom.linear %h, %wh : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
      %s = loom.add %a, %b : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
      %h1 = loom.tanh %s : tensor<?x16xf32>
      loom.yield %h1, %h1 : tensor<?x16xf32>, tensor<?x16xf32>
    } : tensor<?x?x16xf32>, tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Variadic<Loom_FloatTensor>:$inputs,
                       Variadic<Loom_FloatTensor>:$inits,
                       Optional<Loom_IdTensor>:$lengths,
                       UnitAttr:$reverse);
  let results = (outs Variadic<Loom_FloatTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    (`reverse` $reverse^)? `ins` `(` $inputs `:` type($inputs) `)`
    `init` `(` $inits `:` type($inits) `)`
    (`lengths` `(` $lengths^ `:` type($lengths) `)`)?
    $body attr-dict `:` type($results)
  }];
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of per-step outputs (results stacked over time).
    unsigned getNumOutputs() { return getNumResults() - getInits().size(); }
    mlir::Block &getBodyBlock() { return getBody().front(); }
  }];
}

def Loom_YieldOp : Loom_Op<"yield", [Pure, Terminator, ReturnLike,
                                      HasParent<"ScanOp">]> {
  let summary = "end a scan step: its outputs, then its new states";
  let description = [{
    Terminates the body of `loom.scan`, yielding the step outputs followed by
    the new states.
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

def Loom_CrossEntropyOp
    : Loom_Op<"cross_entropy", [Pure, Loom_Differentiable]> {
  let summary = "mean cross-entropy of logits against class ids";
  let description = [{
    `-mean(log_softmax(logits)[..., target])` over every position whose
    target is not `ignore_index`, as `nn.CrossEntropyLoss()` (reduction
    mean). Logits are `[..., C]`, targets `[...]` integers. With every target
    ignored the loss is NaN, as in PyTorch.

    Example:
    ```mlir
    %l = loom.cross_entropy %logits, %targets {ignore_index = -100 : i64}
        : tensor<?x?x10xf32>, tensor<?x?xi64> -> tensor<f32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logits, Loom_IdTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` type($logits) `,` type($targets) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Ops that gradients are built from
//===----------------------------------------------------------------------===//

def Loom_NllOp : Loom_Op<"nll", [Pure, Loom_Differentiable]> {
  let summary = "mean negative log-likelihood of log-probabilities";
  let description = [{
    `-mean(logp[..., target])` over every position whose target is not
    `ignore_index`, as `nn.NLLLoss()` (reduction mean) on log-probabilities
    `[..., C]` and integer targets `[...]`.

    Example:
    ```mlir
    %l = loom.nll %logp, %targets {ignore_index = -100 : i64}
        : tensor<?x10xf32>, tensor<?xi64> -> tensor<f32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logp, Loom_IdTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $logp `,` $targets attr-dict `:` type($logp) `,` type($targets) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def Loom_NllGradOp : Loom_Op<"nll_grad", [Pure]> {
  let summary = "gradient of loom.nll with respect to the log-probabilities";
  let description = [{
    `-dloss / count` at each counted position's target class, 0 elsewhere.

    Example:
    ```mlir
    %g = loom.nll_grad %logp, %targets, %d : tensor<?x10xf32>, tensor<?xi64>, tensor<f32> -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logp, Loom_IdTensor:$targets,
                       0DTensorOf<[F32]>:$dloss,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $logp `,` $targets `,` $dloss attr-dict `:` type($logp) `,`
    type($targets) `,` type($dloss) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_MeanOp : Loom_Op<"mean", [Pure, Loom_Differentiable]> {
  let summary = "the mean of all elements";
  let description = [{
    A scalar: the sum of every element divided by their count. `mse(x, y)`
    is `mean((x - y) * (x - y))`.

    Example:
    ```mlir
    %m = loom.mean %x : tensor<?x8xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Loom_MeanGradOp : Loom_Op<"mean_grad", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "gradient of loom.mean: dloss / count everywhere";
  let description = [{
    A tensor of the input's shape filled with `dloss / numel(input)`.

    Example:
    ```mlir
    %g = loom.mean_grad %x, %d : tensor<?x8xf32>, tensor<f32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, 0DTensorOf<[F32]>:$dloss);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input `,` $dloss attr-dict `:` type($input) `,` type($dloss)";
}

def Loom_RowSumOp : Loom_Op<"row_sum", [Pure, SameOperandsAndResultType]> {
  let summary = "every element replaced by the sum of its row";
  let description = [{
    `result[..., j] = Σ_k input[..., k]` over the last dimension, kept in the
    input's shape so that it combines elementwise with it (the softmax rules
    need `Σ dy · y` per row).

    Example:
    ```mlir
    %s = loom.row_sum %x : tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Loom_CrossEntropyGradOp : Loom_Op<"cross_entropy_grad", [Pure]> {
  let summary = "gradient of loom.cross_entropy with respect to the logits";
  let description = [{
    `(softmax(logits) - onehot(target)) * dloss / count` at positions whose
    target is not `ignore_index`, and 0 elsewhere, where `count` is the
    number of such positions.

    Example:
    ```mlir
    %g = loom.cross_entropy_grad %logits, %targets, %d {ignore_index = -100 : i64}
        : tensor<?x10xf32>, tensor<?xi64>, tensor<f32> -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logits, Loom_IdTensor:$targets,
                       0DTensorOf<[F32]>:$dloss,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets `,` $dloss attr-dict `:` type($logits) `,`
    type($targets) `,` type($dloss) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_ReduceSumOp : Loom_Op<"reduce_sum", [Pure]> {
  let summary = "sum over leading dimensions down to the result's shape";
  let description = [{
    Sums the input over its leading dimensions so that what remains has the
    result's shape (the trailing dimensions of the input). The adjoint of a
    broadcast operand (a bias `[H]` added to `[B, H]`) is this sum.

    Example:
    ```mlir
    %g = loom.reduce_sum %d : tensor<?x16xf32> -> tensor<16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Loom_LinearWeightGradOp : Loom_Op<"linear_weight_grad", [Pure]> {
  let summary = "weight gradient of loom.linear: Σ dyᵀ · x";
  let description = [{
    `result[o, i] = Σ_n dy[n, o] · x[n, i]` over all leading positions `n`:
    the adjoint of `W` in `y = x · Wᵀ`.

    Example:
    ```mlir
    %gw = loom.linear_weight_grad %dy, %x
        : tensor<?x64xf32>, tensor<?x8xf32> -> tensor<64x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$outputGrad, Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $outputGrad `,` $input attr-dict `:` type($outputGrad) `,` type($input)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_EmbeddingGradOp : Loom_Op<"embedding_grad", [Pure]> {
  let summary = "table gradient of loom.embedding: rows scatter-added";
  let description = [{
    `result[v, e] = Σ dy[n, e]` over positions `n` whose id is `v`: the
    adjoint of the table. The vocabulary size is the result's first
    dimension.

    Example:
    ```mlir
    %gw = loom.embedding_grad %ids, %dy
        : tensor<?x?xi64>, tensor<?x?x16xf32> -> tensor<100x16xf32>
    ```
  }];
  let arguments = (ins Loom_IdTensor:$ids, Loom_FloatTensor:$outputGrad);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $ids `,` $outputGrad attr-dict `:` type($ids) `,` type($outputGrad) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def Loom_ReluGradOp : Loom_Op<"relu_grad", [Pure, AllTypesMatch<["outputGrad", "input", "result"]>]> {
  let summary = "gradient of loom.relu: dy where the input is positive";
  let description = [{
    `input > 0 ? dy : 0`, elementwise.

    Example:
    ```mlir
    %g = loom.relu_grad %dy, %x : tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$outputGrad, Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$outputGrad `,` $input attr-dict `:` type($result)";
}

def Loom_ZerosLikeOp : Loom_Op<"zeros_like", [Pure, SameOperandsAndResultType]> {
  let summary = "zeros of the shape of another tensor";
  let description = [{
    A tensor of 0.0 with the type and run-time sizes of the input: the
    adjoint of a value that does not influence the loss.

    Example:
    ```mlir
    %z = loom.zeros_like %x : tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Loom_SliceOp : Loom_Op<"slice", [Pure]> {
  let summary = "a contiguous range of the last dimension";
  let description = [{
    `input[..., offset : offset + size]`, where `size` is the result's last
    dimension. The adjoint of `loom.concat` takes its parts apart with it.

    Example:
    ```mlir
    %p = loom.slice %x[8] : tensor<?x24xf32> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, I64Attr:$offset);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `[` $offset `]` attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_LengthMaskOp : Loom_Op<"length_mask", [Pure]> {
  let summary = "1.0 where a step is within its sequence's length, else 0.0";
  let description = [{
    `result[t, b] = t < lengths[b] ? 1.0 : 0.0` for the `T` steps of the
    sequence operand (only its two leading sizes are used). The backward
    scan of a scan with lengths masks its adjoints with it.

    Example:
    ```mlir
    %m = loom.length_mask %len, %xs : tensor<?xi64>, tensor<?x?x8xf32> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins Loom_IdTensor:$lengths, Loom_FloatTensor:$sequence);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $lengths `,` $sequence attr-dict `:` type($lengths) `,` type($sequence)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_ScaleRowsOp : Loom_Op<"scale_rows", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "multiply each row of a batch by its own factor";
  let description = [{
    `result[b, ...] = input[b, ...] · factors[b]`: applies a per-sequence
    mask (from `loom.length_mask`) to a `[B, ...]` step value.

    Example:
    ```mlir
    %y = loom.scale_rows %x, %m : tensor<?x16xf32>, tensor<?xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$factors);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $factors attr-dict `:` type($input) `,` type($factors)
  }];
  let hasVerifier = 1;
}

#endif // LOOM_OPS_TD
