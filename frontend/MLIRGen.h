//===- MLIRGen.h - loom DSL to the loom dialect -----------------*- C++ -*-===//
#ifndef LOOM_FRONTEND_MLIRGEN_H
#define LOOM_FRONTEND_MLIRGEN_H

#include "frontend/AST.h"
#include "ir/LoomDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

namespace loom {

/// Checks the models of `module` (names, shapes, parameters, options) and
/// emits one `func.func` per model in the loom dialect. `cells` holds every
/// cell visible to the models: the prelude's and the user's. Reports the
/// first error clang-style through `sourceMgr` and returns null.
mlir::OwningOpRef<mlir::ModuleOp>
mlirGen(mlir::MLIRContext &context, llvm::SourceMgr &sourceMgr,
        const ast::Module &module, const std::vector<const ast::Cell *> &cells);

} // namespace loom

#endif
