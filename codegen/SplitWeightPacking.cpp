//===- SplitWeightPacking.cpp - weight transforms once, at load time --===//
//
// In a lowered entry function, the computations that depend only on
// parameters (the transposed weights the matmul kernels read, later the
// concatenated and packed ones) give the same result on every call. This
// pass moves them into `<F>__pack`, which takes those parameters and returns
// the packed tensors, and gives `<F>` one argument per packed tensor
// (`loom.packed = k`). The runtime calls `<F>__pack` once when the weights
// are set and passes its results to every call of `<F>`.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

namespace loom {
#define GEN_PASS_DEF_LOOMSPLITWEIGHTPACKING
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

struct SplitWeightPacking
    : public loom::impl::LoomSplitWeightPackingBase<SplitWeightPacking> {
  void runOnOperation() override {
    SmallVector<func::FuncOp> funcs;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (!f->hasAttr(kPackAttr) && !f.isExternal())
        funcs.push_back(f);
    for (func::FuncOp f : funcs)
      split(f);
  }

  static bool isParamArg(func::FuncOp f, Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner() == &f.getBody().front() &&
           f.getArgAttr(arg.getArgNumber(), kParamArgAttr);
  }

  void split(func::FuncOp f) {
    Block &entry = f.getBody().front();
    // Ops of the entry block computed from parameters and constants only,
    // at least one of them a parameter (directly or through another such
    // op). Ops with side effects beyond their results are not moved.
    llvm::SetVector<Operation *> moved;
    llvm::DenseSet<Value> fromParams;
    for (Operation &op : entry.without_terminator()) {
      if (op.getNumResults() == 0 || !isMemoryEffectFree(&op) ||
          op.getNumOperands() == 0)
        continue;
      bool anyParam = false, allKnown = true;
      SmallVector<Operation *> deps; // constants and empties to move along
      auto check = [&](Value v) {
        if (isParamArg(f, v) || fromParams.contains(v)) {
          anyParam = true;
          return;
        }
        Operation *def = v.getDefiningOp();
        if (def && def->getBlock() == &entry && def->getNumOperands() == 0 &&
            (def->hasTrait<OpTrait::ConstantLike>() ||
             isa<tensor::EmptyOp>(def))) {
          deps.push_back(def);
          return;
        }
        if (!def || def->getBlock() != &entry)
          return; // defined inside the op itself
        allKnown = false;
      };
      // Operands, and values the op's regions capture from the block.
      op.walk([&](Operation *inner) {
        for (Value v : inner->getOperands())
          if (inner == &op || v.getParentBlock() == &entry)
            check(v);
      });
      if (!anyParam || !allKnown)
        continue;
      for (Operation *def : deps)
        moved.insert(def);
      moved.insert(&op);
      for (Value r : op.getResults())
        fromParams.insert(r);
    }
    // The packed tensors: results of moved ops used by the rest.
    SmallVector<Value> outs;
    for (Operation *op : moved)
      for (Value r : op->getResults())
        if (llvm::any_of(r.getUsers(),
                         [&](Operation *u) {
                           Operation *top = entry.findAncestorOpInBlock(*u);
                           return !top || !moved.contains(top);
                         }) &&
            fromParams.contains(r) && isa<RankedTensorType>(r.getType()) &&
            cast<RankedTensorType>(r.getType()).hasStaticShape())
          outs.push_back(r);
    if (outs.empty())
      return;

    for (Value v : outs)
      v.getDefiningOp()->emitRemark()
          << "weight transform (" << v.getDefiningOp()->getName()
          << ") computed once when the weights are set, in @" << f.getName()
          << "__pack (loom-split-weight-packing)";
    // `<F>__pack(params used) -> (packed...)`.
    llvm::SetVector<unsigned> usedParams;
    for (Operation *op : moved)
      op->walk([&](Operation *inner) {
        for (Value v : inner->getOperands())
          if (isParamArg(f, v))
            usedParams.insert(cast<BlockArgument>(v).getArgNumber());
      });
    OpBuilder b(f);
    b.setInsertionPointAfter(f);
    SmallVector<Type> argTypes, resTypes;
    for (unsigned k : usedParams)
      argTypes.push_back(f.getArgument(k).getType());
    for (Value v : outs)
      resTypes.push_back(v.getType());
    auto pack =
        func::FuncOp::create(b, f.getLoc(), (f.getName() + "__pack").str(),
                             b.getFunctionType(argTypes, resTypes));
    pack->setAttr(kPackAttr, b.getUnitAttr());
    Block *body = pack.addEntryBlock();
    IRMapping map;
    for (auto [i, k] : llvm::enumerate(usedParams)) {
      map.map(f.getArgument(k), body->getArgument(i));
      pack.setArgAttr(i, kParamArgAttr, f.getArgAttr(k, kParamArgAttr));
    }
    b.setInsertionPointToStart(body);
    for (Operation *op : moved)
      b.clone(*op, map);
    SmallVector<Value> results;
    for (Value v : outs)
      results.push_back(map.lookup(v));
    func::ReturnOp::create(b, f.getLoc(), results);
    for (unsigned i = 0; i < outs.size(); ++i)
      pack.setResultAttr(i, kNameAttr,
                         b.getStringAttr("packed." + std::to_string(i)));

    // `<F>` takes the packed tensors as arguments instead.
    unsigned first = f.getNumArguments();
    for (auto [i, v] : llvm::enumerate(outs)) {
      if (failed(f.insertArgument(first + i, v.getType(),
                                  b.getDictionaryAttr(b.getNamedAttr(
                                      kPackedArgAttr, b.getI64IntegerAttr(i))),
                                  v.getLoc())))
        return signalPassFailure();
      Value arg = f.getArgument(first + i);
      v.replaceUsesWithIf(arg, [&](OpOperand &use) {
        Operation *top = entry.findAncestorOpInBlock(*use.getOwner());
        return !top || !moved.contains(top);
      });
    }
    for (Operation *op : llvm::reverse(moved))
      if (op->use_empty())
        op->erase();
  }
};

} // namespace
