//===- Passes.h - lowering passes of loom -----------------------*- C++ -*-===//
#ifndef LOOM_CODEGEN_PASSES_H
#define LOOM_CODEGEN_PASSES_H

#include "ir/LoomDialect.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace loom {

#define GEN_PASS_DECL
#include "codegen/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"

/// Attribute names on arguments of a lowered model function.
constexpr const char *kParamArgAttr = "loom.param";
constexpr const char *kOutputArgAttr = "loom.output";
/// On `<F>__pack`: computes `<F>`'s parameter-only tensors once per weights.
constexpr const char *kPackAttr = "loom.pack";
/// On an argument of `<F>`: the index of the `<F>__pack` result it takes.
constexpr const char *kPackedArgAttr = "loom.packed";

/// On an `scf.for` whose iterations are independent: "iterations" (split
/// into ranges of iterations) or "range" (the body, with its induction
/// variable and the value marked kParallelEndAttr, runs a whole range).
constexpr const char *kParallelAttr = "loom.parallel";
constexpr const char *kParallelEndAttr = "loom.parallel_end";
/// On an outlined parallel loop body, and on the calls of it.
constexpr const char *kParallelBodyAttr = "loom.parallel_body";
constexpr const char *kParallelCallAttr = "loom.parallel_call";
/// On a kernel function shared by the matmuls of one form.
constexpr const char *kKernelAttr = "loom.kernel";
/// On a `linalg.generic` that only reads a matmul's result through column
/// slices and may run as that matmul's epilogue (loom-fuse-matmul-epilogues).
constexpr const char *kEpilogueAttr = "loom.epilogue";
/// The thread-pool entry point compiled code calls (runtime/ThreadPool.h).
constexpr const char *kParallelForSymbol = "loom_parallel_for";

} // namespace loom

#endif
