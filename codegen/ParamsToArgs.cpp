//===- ParamsToArgs.cpp - parameters and results become arguments -----===//
//
// Two small passes that fix the ABI of a lowered model function: weights come
// in through arguments (one per distinct parameter name) and results go out
// through caller-provided buffers.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"
#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

namespace loom {
#define GEN_PASS_DEF_LOOMPARAMSTOARGS
#define GEN_PASS_DEF_LOOMOUTPUTSTOARGS
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

/// Functions the runtime calls: a model, its loss or its gradient.
bool isEntryPoint(func::FuncOp f) {
  return f->hasAttr(kModelAttr) || f->hasAttr(kLossAttr) ||
         f->hasAttr(kGradAttr) || f->hasAttr(kStepAttr) ||
         f->hasAttr(kPackAttr);
}

struct ParamsToArgs : public loom::impl::LoomParamsToArgsBase<ParamsToArgs> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (!isEntryPoint(func))
        continue;
      llvm::MapVector<StringRef, SmallVector<ParamOp>> byName;
      func.walk([&](ParamOp p) { byName[p.getName()].push_back(p); });
      OpBuilder b(func.getContext());
      for (auto &[name, ops] : byName) {
        unsigned index = func.getNumArguments();
        auto attrs = b.getDictionaryAttr(
            b.getNamedAttr(kParamArgAttr, b.getStringAttr(name)));
        if (failed(func.insertArgument(index, ops[0].getType(), attrs,
                                       ops[0].getLoc()))) {
          func.emitError("cannot add an argument for parameter ") << name;
          return signalPassFailure();
        }
        Value arg = func.getArgument(index);
        for (ParamOp p : ops) {
          if (p.getType() != arg.getType()) {
            p.emitError("parameter '")
                << name << "' is used with two different types";
            return signalPassFailure();
          }
          p.getResult().replaceAllUsesWith(arg);
          p.erase();
        }
      }
    }
  }
};

struct OutputsToArgs : public loom::impl::LoomOutputsToArgsBase<OutputsToArgs> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (!isEntryPoint(func) || func.getNumResults() == 0)
        continue;
      auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
      OpBuilder b(ret);
      unsigned first = func.getNumArguments();
      for (unsigned i = 0; i < func.getNumResults(); ++i) {
        auto type = dyn_cast<RankedTensorType>(func.getResultTypes()[i]);
        if (!type) {
          func.emitError("model results must be ranked tensors");
          return signalPassFailure();
        }
        auto memref = MemRefType::get(type.getShape(), type.getElementType());
        SmallVector<NamedAttribute> attrs;
        if (auto name = func.getResultAttrOfType<StringAttr>(i, kNameAttr))
          attrs.push_back(b.getNamedAttr(kOutputArgAttr, name));
        if (failed(func.insertArgument(
                first + i, memref, b.getDictionaryAttr(attrs), ret.getLoc()))) {
          func.emitError("cannot add an output argument");
          return signalPassFailure();
        }
        bufferization::MaterializeInDestinationOp::create(
            b, ret.getLoc(), TypeRange{}, ret.getOperand(i),
            func.getArgument(first + i), /*restrict=*/true, /*writable=*/true);
      }
      func::ReturnOp::create(b, ret.getLoc());
      // The JIT calls the function through its C interface: one pointer to
      // a memref descriptor per argument.
      func->setAttr("llvm.emit_c_interface", b.getUnitAttr());
      ret.erase();
      llvm::BitVector all(func.getNumResults(), true);
      if (failed(func.eraseResults(all))) {
        func.emitError("cannot remove the results");
        return signalPassFailure();
      }
    }
  }
};

} // namespace
