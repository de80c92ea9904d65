//===- Frontend.cpp - from .loom source to the loom dialect -----------===//
#include "frontend/Frontend.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"

#include "llvm/Support/FileSystem.h"

using namespace loom;

namespace {
#include "frontend/Prelude.inc"
} // namespace

llvm::StringRef loom::preludeSource() { return kPreludeSource; }

std::vector<const ast::Cell *> ParsedSource::cells() const {
  std::vector<const ast::Cell *> all;
  for (const ast::Cell &c : prelude.cells)
    all.push_back(&c);
  for (const ast::Cell &c : user.cells)
    all.push_back(&c);
  return all;
}

std::unique_ptr<ParsedSource>
loom::parseSource(std::unique_ptr<llvm::MemoryBuffer> buffer,
                  llvm::SourceMgr::DiagHandlerTy handler,
                  void *handlerContext) {
  auto src = std::make_unique<ParsedSource>();
  src->sourceMgr.setDiagHandler(handler, handlerContext);
  unsigned prelude = src->sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBuffer(preludeSource(), "<prelude>"),
      llvm::SMLoc());
  if (!parseLoom(src->sourceMgr, prelude, src->prelude))
    return nullptr;
  unsigned user =
      src->sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  if (!checkSourceLimits(src->sourceMgr, user) ||
      !parseLoom(src->sourceMgr, user, src->user))
    return nullptr;
  return src;
}

std::unique_ptr<llvm::MemoryBuffer>
loom::readSourceFile(const std::string &path, std::string &error) {
  uint64_t size = 0;
  if (!llvm::sys::fs::file_size(path, size) && size > kMaxSourceBytes) {
    error = path + ": the model source is " + std::to_string(size) +
            " bytes; the limit is " + std::to_string(kMaxSourceBytes) +
            " (16 MiB)";
    return nullptr;
  }
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer) {
    error = path + ": " + buffer.getError().message();
    return nullptr;
  }
  return std::move(*buffer);
}

mlir::OwningOpRef<mlir::ModuleOp> loom::generate(mlir::MLIRContext &context,
                                                 ParsedSource &source) {
  return mlirGen(context, source.sourceMgr, source.user, source.cells());
}
