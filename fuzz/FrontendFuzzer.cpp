//===- FrontendFuzzer.cpp - the DSL frontend ----------------------------===//
//
// Any bytes as a .loom file: the parser, the checks and MLIRGen either
// produce a module that verifies or report diagnostics; nothing crashes,
// aborts or recurses without bound. Diagnostics are collected and dropped.
//
//===----------------------------------------------------------------------===//
#include "frontend/Frontend.h"
#include "frontend/Parser.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

namespace {
void collect(const llvm::SMDiagnostic &diag, void *context) {
  llvm::raw_string_ostream os(*static_cast<std::string *>(context));
  loom::writeDiagnostic(os, diag);
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  std::string diagnostics;
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.loom");
  auto source = loom::parseSource(std::move(buffer), collect, &diagnostics);
  if (!source) {
    if (diagnostics.empty())
      std::abort(); // a rejected file always says why
    return 0;
  }
  {
    std::string ast;
    llvm::raw_string_ostream os(ast);
    loom::ast::dump(source->user, os);
  }
  llvm::raw_string_ostream os(diagnostics);
  mlir::SourceMgrDiagnosticHandler handler(source->sourceMgr, &context, os);
  auto module = loom::generate(context, *source);
  if (!module) {
    if (diagnostics.empty())
      std::abort();
    return 0;
  }
  if (mlir::failed(mlir::verify(*module)))
    std::abort(); // MLIRGen's output must verify
  return 0;
}
