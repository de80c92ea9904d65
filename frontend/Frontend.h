//===- Frontend.h - from .loom source to the loom dialect -------*- C++ -*-===//
#ifndef LOOM_FRONTEND_FRONTEND_H
#define LOOM_FRONTEND_FRONTEND_H

#include "frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>

namespace loom {

/// The text of the prelude (the built-in cells), embedded at build time.
llvm::StringRef preludeSource();

/// A parsed .loom file together with the prelude. Keeps the source buffers
/// alive for diagnostics.
struct ParsedSource {
  llvm::SourceMgr sourceMgr;
  ast::Module prelude;
  ast::Module user;
  std::vector<const ast::Cell *> cells() const;
};

/// Parses `buffer` (named `name` in diagnostics) and the prelude. Errors are
/// printed clang-style to `errs` (stderr by default); returns null on error.
/// With `handler`, the diagnostics of parsing and checking go to it
/// instead (print them with writeDiagnostic, frontend/Parser.h).
std::unique_ptr<ParsedSource>
parseSource(std::unique_ptr<llvm::MemoryBuffer> buffer,
            llvm::SourceMgr::DiagHandlerTy handler = nullptr,
            void *handlerContext = nullptr);

/// Reads a model file, refusing one over kMaxSourceBytes (frontend/Parser.h)
/// before reading it. Errors start with "<path>: ".
std::unique_ptr<llvm::MemoryBuffer> readSourceFile(const std::string &path,
                                                   std::string &error);

/// Parses and checks, then generates the loom dialect.
mlir::OwningOpRef<mlir::ModuleOp> generate(mlir::MLIRContext &context,
                                           ParsedSource &source);

} // namespace loom

#endif
