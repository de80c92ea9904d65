//===- UnrollTime.cpp - unroll the time loops by a factor -------------===//
//
// The `scf.for` loops over time that convert-loom-to-linalg makes of
// loom.scan (forward and reverse scans alike, so the backward scans of a
// gradient too) carry `loom.time_loop`. This pass unrolls each of them by a
// factor N: the main loop runs N steps per iteration and an epilogue loop
// the remaining T mod N, so T stays a run-time size and the code size does
// not depend on it. Each step is computed as before, so results do not
// change.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace loom {
#define GEN_PASS_DEF_LOOMUNROLLTIME
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

/// The largest step the compiler unrolls by itself: 32768 weight elements
/// (an LSTM of hidden size 90) in at most 400 operations.
static constexpr int64_t kSmallStepWeights = 32768;
static constexpr unsigned kSmallStepOps = 400;

unsigned loom::defaultTimeUnrollFactor(mlir::Operation *timeLoop) {
  // See docs/rationale.md ("Performance"): the measured gain (about 8% at
  // B = 1) is in small steps, where the loop's per-step bookkeeping is a
  // visible part of the step; big steps gain nothing measurable, a factor
  // of 4 gains no more than 2, and every step more doubles the code to
  // compile. A step's size is measured by the loop-invariant tensors it
  // reads (the weights: its matmul work per batch row), its code by its
  // operations.
  unsigned ops = 0;
  int64_t weightElements = 0;
  llvm::SmallPtrSet<Value, 16> seen;
  timeLoop->walk([&](Operation *op) {
    ++ops;
    for (Value v : op->getOperands()) {
      auto type = dyn_cast<RankedTensorType>(v.getType());
      if (type && type.hasStaticShape() &&
          !timeLoop->getRegion(0).isAncestor(v.getParentRegion()) &&
          seen.insert(v).second)
        weightElements += type.getNumElements();
    }
  });
  return weightElements <= kSmallStepWeights && ops <= kSmallStepOps ? 2 : 1;
}

namespace {

struct UnrollTime : public loom::impl::LoomUnrollTimeBase<UnrollTime> {
  using LoomUnrollTimeBase::LoomUnrollTimeBase;

  void runOnOperation() override {
    SmallVector<scf::ForOp> loops;
    getOperation()->walk([&](scf::ForOp loop) {
      if (loop->hasAttr(kTimeLoopAttr) && !loop->hasAttr(kUnrolledAttr))
        loops.push_back(loop);
    });
    for (scf::ForOp loop : loops) {
      unsigned n = factor ? unsigned(factor) : defaultTimeUnrollFactor(loop);
      if (n <= 1)
        continue;
      Location loc = loop.getLoc();
      auto unrolled = loopUnrollByFactor(loop, n);
      if (failed(unrolled)) {
        loop.emitError("could not unroll the time loop by ") << n;
        return signalPassFailure();
      }
      OpBuilder b(&getContext());
      if (unrolled->mainLoopOp) {
        (*unrolled->mainLoopOp)->setAttr(kUnrolledAttr, b.getI64IntegerAttr(n));
        emitRemark(loc) << "time loop unrolled by " << n
                        << " (loom-unroll-time)";
      }
      if (unrolled->epilogueLoopOp)
        (*unrolled->epilogueLoopOp)
            ->setAttr(kUnrolledAttr, b.getI64IntegerAttr(1));
    }
  }
};

} // namespace
