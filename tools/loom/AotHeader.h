//===- AotHeader.h - the C header of an ahead-of-time object ----*- C++ -*-===//
//
// `loom compile M.loom --emit=obj` writes an object file a host program links
// without LLVM or MLIR (only libloom_runtime.a, standard C++); `--emit=header`
// writes the C header that calls it: the model's sizes and parameter names,
// `<M>_init` (packs the weights, given as pointers or embedded in the object
// with `--embed-weights`), `<M>_run` (checks token ids and lengths, then
// runs on caller-owned buffers) and `<M>_free`.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TOOLS_LOOM_AOTHEADER_H
#define LOOM_TOOLS_LOOM_AOTHEADER_H

#include "codegen/Jit.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/IR/Module.h"

#include <map>
#include <string>

namespace loom {

/// The header for model `func` (at the loom level: names, declared sizes,
/// output shapes) whose lowered form takes its arguments as `layout` says.
ErrorOr<std::string> generateAotHeader(mlir::func::FuncOp func,
                                       const CallLayout &layout);

/// Adds the weights to `module` as constants, with the table
/// `<Model>_embedded_params` (one pointer per parameter in layout order)
/// that `<Model>_init(m, NULL)` uses.
Status embedWeights(llvm::Module &module, llvm::StringRef modelName,
                    const CallLayout &layout,
                    const std::map<std::string, Tensor> &weights);

/// Gives every function of `module` internal linkage except the C
/// interfaces (`_mlir_ciface_*`), so that several models' objects link
/// into one program.
void internalizeForAot(llvm::Module &module);

} // namespace loom

#endif // LOOM_TOOLS_LOOM_AOTHEADER_H
