//===- FuseGateMatmuls.cpp - one matmul per shared operand ------------===//
//
// In a loom.scan body, the `loom.linear`s that multiply the same value (the
// step input x_t, a state h_{t-1}, or anything else) by weights defined
// outside the scan become one `loom.linear` by the weights concatenated
// along their output dimension, followed by a `loom.split` that gives back
// each original result. A cell written per gate (`i = sigmoid(Wi @ x + Ui @
// h + bi)`, `f = ...`) thus does one x-matmul and one h-matmul per step, as
// the built-in cells (whose weights are already stacked) do.
//
// The concatenation is parameter-only and placed before the scan, so
// loom-split-weight-packing moves it into the pack function that runs once
// when the weights are set; nothing is concatenated per step. loom.concat
// joins last dimensions, so the `[O_k, I]` weights are concatenated as
// `transpose(concat(transpose(W_k)))`; every op involved has an autodiff
// rule, so the fused form is differentiable (a weight used by several of
// the fused matmuls gets the sum of its slices' adjoints).
//
// Each output element is the same sum over the same inputs in the same
// order, so the results are bit-identical to the unfused matmuls.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#include <numeric>

namespace loom {
#define GEN_PASS_DEF_LOOMFUSEGATEMATMULS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

struct FuseGateMatmuls
    : public loom::impl::LoomFuseGateMatmulsBase<FuseGateMatmuls> {
  void runOnOperation() override {
    SmallVector<ScanOp> scans;
    getOperation().walk([&](ScanOp s) { scans.push_back(s); });
    for (ScanOp s : scans)
      fuse(s);
  }

  /// A weight the pass can concatenate: a static `[O, I]` matrix defined
  /// outside `scan`, so constant over its time steps.
  static bool isFusableWeight(ScanOp scan, Value w) {
    auto type = dyn_cast<RankedTensorType>(w.getType());
    return type && type.getRank() == 2 && type.hasStaticShape() &&
           !scan.getBody().isAncestor(w.getParentRegion());
  }

  /// Fuses each group of linears of `scan`'s body that share an input.
  void fuse(ScanOp scan) {
    Block &body = scan.getBodyBlock();
    llvm::MapVector<Value, SmallVector<LinearOp>> groups;
    for (Operation &op : body)
      if (auto lin = dyn_cast<LinearOp>(&op))
        if (isFusableWeight(scan, lin.getWeight()))
          groups[lin.getInput()].push_back(lin);
    for (auto &entry : groups)
      fuseGroup(scan, entry.second);
  }

  void fuseGroup(ScanOp scan, ArrayRef<LinearOp> group) {
    // The parts take the first matmul's leading (row) dimensions, so only
    // matmuls whose results agree with it there are fused (they always do
    // for one input, unless their types differ in static-ness).
    auto leading = [](LinearOp lin) {
      return cast<RankedTensorType>(lin.getType()).getShape().drop_back();
    };
    SmallVector<LinearOp> lins;
    for (LinearOp lin : group)
      if (leading(lin) == leading(group.front()))
        lins.push_back(lin);
    // Distinct weights, in order of first use; a weight used twice on the
    // same input gives the same part twice.
    SmallVector<Value> weights;
    for (LinearOp lin : lins)
      if (!llvm::is_contained(weights, lin.getWeight()))
        weights.push_back(lin.getWeight());
    if (weights.size() < 2)
      return;
    Location loc = lins.front().getLoc();
    auto elemType =
        cast<RankedTensorType>(weights.front().getType()).getElementType();
    int64_t inSize =
        cast<RankedTensorType>(weights.front().getType()).getDimSize(1);
    SmallVector<int64_t> sizes, offsets;
    int64_t total = 0;
    for (Value w : weights) {
      offsets.push_back(total);
      sizes.push_back(cast<RankedTensorType>(w.getType()).getDimSize(0));
      total += sizes.back();
    }

    // Before the scan: [ΣO, I] = transpose(concat(transpose(W_k))).
    OpBuilder b(scan);
    SmallVector<Value> transposed;
    DenseI64ArrayAttr swap = b.getDenseI64ArrayAttr({1, 0});
    for (Value w : weights) {
      auto type = cast<RankedTensorType>(w.getType());
      auto tType = RankedTensorType::get(
          {type.getDimSize(1), type.getDimSize(0)}, elemType);
      transposed.push_back(
          TransposeOp::create(b, w.getLoc(), tType, w, swap).getResult());
    }
    Value cat = ConcatOp::create(
        b, loc, RankedTensorType::get({inSize, total}, elemType), transposed);
    Value fusedWeight = TransposeOp::create(
        b, loc, RankedTensorType::get({total, inSize}, elemType), cat, swap);

    // In the body, at the first matmul (the shared input dominates it):
    // the fused matmul, then its parts. Equal parts are one loom.split;
    // otherwise a split into parts of the sizes' gcd, joined back per
    // weight with loom.concat (both differentiable).
    LinearOp first = lins.front();
    b.setInsertionPoint(first);
    auto resType = cast<RankedTensorType>(first.getType());
    SmallVector<int64_t> shape(resType.getShape());
    shape.back() = total;
    Value fused = LinearOp::create(b, loc, resType.clone(shape),
                                   first.getInput(), fusedWeight);
    int64_t g = 0;
    for (int64_t s : sizes)
      g = std::gcd(g, s);
    auto partType = [&](int64_t n) {
      shape.back() = n;
      return resType.clone(shape);
    };
    SmallVector<Type> pieceTypes(total / g, partType(g));
    auto split = SplitOp::create(b, loc, pieceTypes, fused);
    SmallVector<Value> parts;
    for (auto [k, w] : llvm::enumerate(weights)) {
      auto pieces = split.getResults().slice(offsets[k] / g, sizes[k] / g);
      if (pieces.size() == 1)
        parts.push_back(pieces.front());
      else
        parts.push_back(
            ConcatOp::create(b, loc, partType(sizes[k]), ValueRange(pieces))
                .getResult());
    }
    fused.getDefiningOp()->emitRemark()
        << "fused " << lins.size() << " matmuls sharing an operand into one "
        << fused.getType()
        << " matmul over their concatenated weights (loom-fuse-gate-matmuls)";
    for (LinearOp lin : lins) {
      unsigned k = llvm::find(weights, lin.getWeight()) - weights.begin();
      lin.getResult().replaceAllUsesWith(parts[k]);
      lin.erase();
    }
  }
};

} // namespace
