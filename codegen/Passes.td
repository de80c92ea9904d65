//===- Passes.td - lowering passes of loom -----------------*- tablegen -*-===//
//
// Passes that take a loom model function towards native code. The whole
// pipeline is assembled in Pipeline.cpp from these and upstream passes.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_PASSES_TD
#define LOOM_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomParamsToArgs : Pass<"loom-params-to-args", "mlir::ModuleOp"> {
  let summary = "turn named parameters into arguments of the model function";
  let description = [{
    Replaces every `loom.param` of a model function by a new function
    argument (one per distinct name, in first-use order), marked with a
    `loom.param` argument attribute holding the name. The runtime passes the
    weight buffers through these arguments; tied weights share one argument.

    Before:
    ```mlir
    func.func @M(%x: tensor<?x8xf32>) -> tensor<?x4xf32> attributes {loom.model} {
      %w = loom.param "fc.weight" : tensor<4x8xf32>
      ...
    ```
    After:
    ```mlir
    func.func @M(%x: tensor<?x8xf32>, %w: tensor<4x8xf32> {loom.param = "fc.weight"}) ...
    ```
  }];
  let dependentDialects = ["::loom::LoomDialect", "::mlir::func::FuncDialect"];
}

def LoomOutputsToArgs : Pass<"loom-outputs-to-args", "mlir::ModuleOp"> {
  let summary = "write model results into caller-provided buffers";
  let description = [{
    Turns each result of a model function into a trailing `memref` argument
    (marked `loom.output`) that the result is materialized into, and leaves
    the function without results. The caller owns every buffer: the JIT ABI
    is then a flat list of memref descriptors with no allocation crossing the
    boundary.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect"];
}

def ConvertLoomToLinalg : Pass<"convert-loom-to-linalg", "mlir::func::FuncOp"> {
  let summary = "lower loom ops to linalg, tensor, scf, arith and math";
  let description = [{
    Lowers every loom op on tensors: `loom.linear` to a contraction over a
    transposed weight (transposed once at function entry, not per step),
    elementwise ops to `linalg.generic`, shape ops to `tensor` slices, and
    `loom.scan` to an `scf.for` over time whose iteration arguments carry the
    states and the stacked outputs; lengths become a select in the step.
    Expects parameters to be function arguments (`loom-params-to-args`).
  }];
  let dependentDialects = [
    "::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect",
    "::mlir::scf::SCFDialect", "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect"
  ];
}

def LoomExpandMath : Pass<"loom-expand-math", "mlir::func::FuncOp"> {
  let summary = "replace tanh, exp and log by vectorizable polynomial approximations";
  let description = [{
    Applies MLIR's polynomial approximations to `math.tanh`, `math.exp` and
    `math.log`
    so that the gate nonlinearities become plain arithmetic that LLVM can
    vectorize, instead of calls into libm. Also rewrites conversions between
    f32 and bf16 (`arith.truncf`, rounding to nearest even, and
    `arith.extf`) as integer arithmetic, which would otherwise become calls
    into the compiler runtime.
  }];
  let dependentDialects = ["::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect"];
}

def LoomCopiesToLoops : Pass<"loom-copies-to-linalg", "mlir::func::FuncOp"> {
  let summary = "turn memref.copy into linalg.copy";
  let description = [{
    Bufferization copies strided views with `memref.copy`, which the LLVM
    lowering turns into a call to a runtime library (`memrefCopy`). As a
    `linalg.copy` it becomes plain loops instead, so compiled models need no
    runtime library, in the JIT or in an object file.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def LoomExpandShapeToCast
    : Pass<"loom-expand-shape-to-cast", "mlir::func::FuncOp"> {
  let summary = "rewrite memref.expand_shape as memref.reinterpret_cast";
  let description = [{
    Replaces each `memref.expand_shape` by a `memref.reinterpret_cast` of
    its source's base buffer with the expanded sizes (its `output_shape`)
    and the strides they imply, before `expand-strided-metadata`. MLIR 22's
    `expand-strided-metadata` crashes on an `expand_shape` that splits one
    dimension into several dynamic ones (`[T·B, G]` into `[T, B, G]`, as
    `loom-collapse-contraction-dims` produces), because it recomputes the
    sizes from the source instead of reading `output_shape`.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def LoomSplitWeightPacking
    : Pass<"loom-split-weight-packing", "mlir::ModuleOp"> {
  let summary = "move parameter-only computations into a pack function run at load time";
  let description = [{
    In each lowered entry function `<F>`, the ops computed only from
    parameter arguments (and constants) — the transposed weights the matmul
    kernels read — give the same result on every call. They move into
    `<F>__pack` (marked `loom.pack`, taking those parameters and returning
    the static-shaped tensors `<F>` used), and `<F>` gets one argument per
    such tensor (`loom.packed = k`). The runtime calls `<F>__pack` when the
    weights are set, so a call of `<F>` no longer re-transposes them.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect"];
}

def LoomVectorizeContractions
    : Pass<"loom-vectorize-contractions", "mlir::func::FuncOp"> {
  let summary = "register-blocked vector kernels for multiply-accumulate contractions";
  let description = [{
    After bufferization, rewrites each `linalg.generic` computing
    `C[..., m, n] += Σ A · B[..., k, n]` (B and C contiguous in `n`, A not
    indexed by `n`: the forward matmuls, the backward input matmuls and the
    weight-gradient matmuls) into loops over `rows` × (`vectors` ·
    `vector-width`) tiles of C held in vector registers: per reduction index,
    `vectors` loads of B, one broadcast of A per row and `rows` · `vectors`
    FMAs. Full tiles use plain loads and stores; only a last, partial tile
    is masked. The last rows use 4-, 2- and 1-row kernels. Reductions stay
    innermost and in order.

    B comes in one of three ways: packed at load time by
    `loom-pack-weights` (`B[n floordiv 16, k, n mod 16]`, read in place);
    copied at run time, per column panel and block of 256 reduction
    indices, into a contiguous buffer when the matmul has at least 16 rows
    to reuse it (a plain `[k, n]` B, e.g. activations in a weight
    gradient); or read in place (fewer rows, or several reduction
    dimensions).

    The innermost reduction loop carries an `llvm.loop_annotation` that
    keeps LLVM from unrolling, interleaving or vectorizing it again: it is
    already register-blocked, and unrolled its B streams need more address
    registers than the target has.

    In a kernel that `loom-outline-contractions` made of a matmul and its
    `loom.epilogue` (C's zero fill, the matmul, C's gate slices, the
    epilogue), the kernel runs, for one row (batch 1), tiles of one row ×
    every gate's vectors of the same units (as many accumulators as the
    matmul tile), then the epilogue's body on those accumulators as vector
    ops (other inputs loaded along the units or broadcast, scalars from
    above broadcast), and stores only the epilogue's results: the gate
    sums never reach memory, and each thread's block of units is one task,
    every gate included. Each gate's width and first column must be whole
    vectors (else a remark says why not, and the epilogue runs as loops).
    With more rows the same kernel runs the matmul tiles and then the
    epilogue as a loop nest: on AVX2, tiles of several rows × every gate do
    not fit the 16 registers with their B vectors, and measured slower
    than the 6-row matmul tiles from 2 rows on.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", "16",
           "f32 lanes per vector (16: AVX-512)">,
    Option<"vectors", "vectors", "int64_t", "4",
           "vectors per tile row">,
    Option<"rows", "rows", "int64_t", "6", "rows per tile">,
  ];
  let dependentDialects = ["::mlir::vector::VectorDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def LoomCollapseContractionDims
    : Pass<"loom-collapse-contraction-dims", "mlir::func::FuncOp"> {
  let summary = "fold a matmul's consecutive row or reduction dimensions into one";
  let description = [{
    On tensors, for each multiply-accumulate contraction that
    `loom-vectorize-contractions` handles, folds every run of consecutive
    loop dimensions of the same kind that all operands index contiguously
    and in order into one dimension (`linalg::collapseOpIterationDims`,
    with `tensor.collapse_shape`/`expand_shape` on the operands). The
    hoisted input projection `[T, B, I] × [I, G]` becomes one
    `[T·B, I] × [I, G]` matmul, whose row blocks span the whole sequence
    (with B = 1 it was T one-row products, each streaming all of B), and a
    weight gradient `Σ_{t,b} dy[t, b, o] · x[t, b, i]` gets a single
    reduction of length T·B, which the kernel blocks and packs.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def LoomFuseMatmulEpilogues
    : Pass<"loom-fuse-matmul-epilogues", "mlir::func::FuncOp"> {
  let summary = "gather the elementwise ops after a matmul into one epilogue over its gate slices";
  let description = [{
    On tensors, for each multiply-accumulate contraction that
    `loom-vectorize-contractions` handles (a recurrent step's `h · W_hh`
    above all), rewrites the elementwise ops that consume its result into
    one `linalg.generic` that reads the result only through column slices
    (one per gate) and is marked `loom.epilogue`:

    - an elementwise op on the whole result that is only read through
      `tensor.extract_slice`s (the bias and input-projection adds, before
      the gates are split) is computed per slice instead
      (`TilingInterface::getTiledImplementation`), so that each gate's
      add reads a slice of the matmul;
    - elementwise producers are then fused into their consumers even when
      their results have other, non-linalg uses (a cell state that is both
      yielded and read by the output gate): the fused op also yields them,
      and nothing is computed twice.

    After bufferization `loom-outline-contractions` moves the matmul and
    its marked epilogue into one kernel function, and
    `loom-vectorize-contractions` applies the epilogue to the kernel's
    accumulators in registers: the gate pre-activations never reach
    memory. The rewrite alone changes no result (the same scalar
    operations, in the same order per element).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def LoomPackWeights : Pass<"loom-pack-weights", "mlir::func::FuncOp"> {
  let summary = "pack matmul weights into the kernel's column panels, once at load time";
  let description = [{
    On tensors, before `loom-split-weight-packing`: for each
    multiply-accumulate contraction that `loom-vectorize-contractions`
    handles whose B operand (`[K, N]`, indexed `[k, n]`) is computed from
    parameters only, adds `Bp = pack(B)` of shape `[ceil(N / 16), K, 16]`
    (`Bp[g, k, j] = B[k, 16 g + j]`, zero past column N) and makes the
    contraction read `Bp[n floordiv 16, k, n mod 16]`. The packing then
    moves into `<F>__pack` with the other weight transforms, so it runs once
    when the weights are set, and the kernel streams each 16-column panel
    of B contiguously instead of reading rows that are often a power of
    two apart (cache-set and TLB conflicts, no prefetch across pages; the
    dominant cost of batch-1 recurrent steps).

    With `bf16`, the packed weights are stored as bfloat16 (rounded to
    nearest even): the contraction's body widens each B element back to f32
    (`arith.extf`) before the multiply, so accumulation, the other operand
    and the result stay f32, and a batch-1 step streams half the bytes.
  }];
  let options = [
    Option<"bf16", "bf16", "bool", "false",
           "store the packed weights as bfloat16 (inference only)">,
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def LoomOutlineContractions
    : Pass<"loom-outline-contractions", "mlir::ModuleOp"> {
  let summary = "share one kernel function among the matmuls of the same form";
  let description = [{
    After bufferization, moves each multiply-accumulate contraction that
    `loom-vectorize-contractions` handles into a private function
    `@loom_matmul<k>` (marked `loom.kernel` and `noinline`) taking its
    operands with every size, stride and offset dynamic (but a unit
    innermost stride), and calls it through `memref.cast`s. Contractions of
    the same form — indexing maps, iterators, operand ranks, body — share
    one function whatever their sizes, so the register-blocked code exists
    once per form (a handful per model: forward, backward-input and
    weight-gradient matmuls) instead of once per matmul: compile time and
    code size no longer grow with the number of matmuls.

    A matmul followed by its `loom.epilogue` (loom-fuse-matmul-epilogues)
    moves into `@loom_matmul_epilogue<k>` together with it, when nothing in
    between writes memory, C is a fresh buffer used only by them (its fill,
    the matmul, the epilogue's column slices of its first rows) and the
    epilogue's outputs are fresh buffers no other operand shares: the
    kernel also takes the epilogue's other operands, the scalars it uses
    (the time step, for lengths) and the slices' row count.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect"];
}

def LoomLinalgToLoops : Pass<"loom-linalg-to-loops", "mlir::func::FuncOp"> {
  let summary = "lower linalg ops to loops, marking the outer loops that may run in parallel";
  let description = [{
    Lowers every linalg op left after `loom-vectorize-contractions` to a nest
    of `scf.for` loops, as upstream `convert-linalg-to-loops` does, and marks
    the outermost loop with `loom.parallel = "iterations"` when it runs over
    a parallel dimension and an iteration has enough work to be worth
    sending to another thread (at least `min-work` scalar operations per
    iteration, counting a dynamic inner size as 32).
    `loom-outline-parallel-loops` then splits marked loops across threads.

    A reduction generic (parallel dimensions, then reductions, operands
    indexed by plain dimensions, the output read only to combine it as
    `acc + f(...)` or `max(acc, f(...))`) is lowered with the accumulator
    as an `scf.for` iter_arg — loaded before the reduction loops, stored
    after — instead of a load and a store per element, and its sum is
    marked `reassoc`, so that LLVM keeps it in a register and vectorizes
    it. The order of the sum then depends on the vector width, never on
    the number of threads.
  }];
  let options = [
    Option<"minWork", "min-work", "int64_t", "256",
           "scalar operations per outer iteration below which a loop stays serial">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def LoomOutlineParallelLoops
    : Pass<"loom-outline-parallel-loops", "mlir::ModuleOp"> {
  let summary = "outline the loops marked parallel into functions the thread pool runs on ranges";
  let description = [{
    Each `scf.for` marked `loom.parallel` (by `loom-vectorize-contractions`:
    a matmul's column tiles; by `loom-linalg-to-loops`: the outer loop of an
    elementwise op), and not inside another marked loop, becomes a private
    function `<F>__par<k>(%begin, %end, captured values...)` (marked
    `loom.parallel_body`) that runs iterations `[begin, end)`, and the loop
    becomes one call of it on `[0, trip count)` (marked
    `loom.parallel_call`). With `loom.parallel = "range"` the body is the
    loop body itself on the whole range: `%iv` becomes `%begin` and the
    value marked `loom.parallel_end` (the body's `%iv + 1`) becomes `%end`,
    so that one call runs one kernel over a contiguous block of columns.
    Constants are cloned into the body rather than captured.
    `loom-parallel-to-runtime` turns the calls into thread-pool calls after
    the conversion to the LLVM dialect; until then the program means the
    same as before (the call runs every iteration).
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def LoomParallelToRuntime
    : Pass<"loom-parallel-to-runtime", "mlir::ModuleOp"> {
  let summary = "call outlined parallel loop bodies through the thread pool";
  let description = [{
    In the LLVM dialect, each call of a `loom.parallel_body` function
    `@B(%begin, %end, %args...)` becomes
    `llvm.call @loom_parallel_for(@B__task, %context, %end)`: the arguments
    are stored in a stack struct (allocated once in the caller's entry
    block) and `@B__task(%context, %begin, %end)` loads them and calls `@B`.
    `loom_parallel_for` (runtime/ThreadPool.h) splits `[0, %end)` into one
    contiguous range per thread of the current pool, or runs it on the
    calling thread when there is no pool.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif
