//===- Parser.h - parser of the loom DSL ------------------------*- C++ -*-===//
#ifndef LOOM_FRONTEND_PARSER_H
#define LOOM_FRONTEND_PARSER_H

#include "frontend/AST.h"

#include "llvm/Support/SourceMgr.h"

#include <optional>

namespace loom {

/// Parses the buffer `bufferId` of `sourceMgr` into `module` (appending).
/// Reports the first syntax error clang-style through the source manager and
/// returns false.
bool parseLoom(llvm::SourceMgr &sourceMgr, unsigned bufferId,
               ast::Module &module);

/// Resource limits (docs/robustness.md): expression nesting, which keeps
/// hostile input from exhausting the stack; the size of a model file and
/// the length of one of its lines, checked before parsing. Diagnostics show
/// at most kShownLineWidth bytes of a line, around the column.
constexpr int kMaxExprDepth = 200;
constexpr uint64_t kMaxSourceBytes = uint64_t(16) << 20;
constexpr size_t kMaxLineLength = 10000;
constexpr size_t kShownLineWidth = 160;

/// An error for a source buffer over kMaxSourceBytes or with a line over
/// kMaxLineLength, printed through printDiagnostic; false if there is one.
bool checkSourceLimits(llvm::SourceMgr &sourceMgr, unsigned bufferId);

/// Prints a diagnostic clang-style: `file:line:col: error: message`, the
/// source line and a caret under the column (also under lines with non-ASCII
/// text, where llvm::SourceMgr alone prints no caret).
/// If `sourceMgr` has a diagnostic handler, it receives the diagnostic
/// instead (and may print it with writeDiagnostic).
void printDiagnostic(llvm::SourceMgr &sourceMgr, llvm::SMLoc loc,
                     llvm::SourceMgr::DiagKind kind, const llvm::Twine &msg);

/// Writes `diag` as printDiagnostic prints it.
void writeDiagnostic(llvm::raw_ostream &os, const llvm::SMDiagnostic &diag);

} // namespace loom

#endif
