//===- HoistInputProjection.cpp - one matmul over all time steps -------===//
//
// In a loom.scan body, `loom.linear %x_t, %W` where %x_t is the step slice
// of an input sequence and %W is defined outside the scan does not depend
// on the recurrence: it becomes one `loom.linear %xs, %W` over the whole
// `[T, B, I]` sequence before the scan (a `[T·B, I] × [I, G]` matmul that
// reads W once instead of T times), fed to the body as a new input. For any
// cell, built-in or not. Run before loom-differentiate, the backward of the
// hoisted matmul is likewise one weight-gradient matmul over all steps.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"

namespace loom {
#define GEN_PASS_DEF_LOOMHOISTINPUTPROJECTION
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

struct HoistInputProjection
    : public loom::impl::LoomHoistInputProjectionBase<HoistInputProjection> {
  void runOnOperation() override {
    SmallVector<ScanOp> scans;
    getOperation().walk([&](ScanOp s) { scans.push_back(s); });
    unsigned hoisted = 0;
    for (ScanOp s : scans)
      hoisted += hoist(s);
    (void)hoisted;
  }

  /// Hoists every eligible linear of `scan`'s body; returns how many.
  unsigned hoist(ScanOp scan) {
    Block &body = scan.getBodyBlock();
    unsigned numInputs = scan.getInputs().size();
    SmallVector<LinearOp> candidates;
    for (Operation &op : body)
      if (auto lin = dyn_cast<LinearOp>(&op)) {
        auto arg = dyn_cast<BlockArgument>(lin.getInput());
        if (arg && arg.getOwner() == &body && arg.getArgNumber() < numInputs &&
            !scan.getBody().isAncestor(lin.getWeight().getParentRegion()))
          candidates.push_back(lin);
      }
    for (LinearOp lin : candidates) {
      unsigned k = cast<BlockArgument>(lin.getInput()).getArgNumber();
      Value seq = scan.getInputs()[k];
      auto seqType = cast<RankedTensorType>(seq.getType());
      auto stepType = cast<RankedTensorType>(lin.getType());
      SmallVector<int64_t> shape{seqType.getDimSize(0)};
      shape.append(stepType.getShape().begin(), stepType.getShape().end());
      auto projType = RankedTensorType::get(shape, stepType.getElementType());
      OpBuilder b(scan);
      Value proj =
          LinearOp::create(b, lin.getLoc(), projType, seq, lin.getWeight());
      lin->emitRemark()
          << "hoisted out of the time loop: one matmul over every step of "
             "the sequence, "
          << projType << " (loom-hoist-input-projection)";
      unsigned pos = scan.getInputs().size();
      scan.getInputsMutable().append(proj);
      BlockArgument slice = body.insertArgument(pos, stepType, lin.getLoc());
      lin.getResult().replaceAllUsesWith(slice);
      lin.erase();
    }
    // Inputs the body no longer reads (only the hoisted matmul used them)
    // are dropped; the projections keep the scan's sequence length.
    for (int k = int(numInputs) - 1; k >= 0; --k)
      if (!candidates.empty() && body.getArgument(k).use_empty() &&
          scan.getInputs().size() > 1) {
        body.eraseArgument(k);
        scan.getInputsMutable().erase(k);
      }
    return candidates.size();
  }
};

} // namespace
