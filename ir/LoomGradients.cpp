//===- LoomGradients.cpp - reverse-mode rules of the loom ops ---------===//
//
// One buildVJP per differentiable op: from the adjoints of the results,
// build the adjoints of the operands with loom ops. Broadcast operands get
// their adjoints summed back to their own shape. loom.scan is not here: its
// reverse is a whole backward scan, built by loom-differentiate.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace loom;

namespace {

RankedTensorType tensorTypeOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Sums `g` over the leading dimensions it has beyond `target`'s shape.
Value reduceTo(OpBuilder &b, Location loc, Value g, Value target) {
  if (g.getType() == target.getType())
    return g;
  if (tensorTypeOf(g).getRank() == tensorTypeOf(target).getRank())
    return g; // equal shapes up to static-ness: no broadcast happened
  return ReduceSumOp::create(b, loc, target.getType(), g);
}

Value scalar(OpBuilder &b, Location loc, float v) {
  auto type = RankedTensorType::get({}, b.getF32Type());
  return arith::ConstantOp::create(b, loc, type,
                                   DenseElementsAttr::get(type, v));
}

Value mul(OpBuilder &b, Location loc, Value x, Value y) {
  Value longer = tensorTypeOf(x).getRank() >= tensorTypeOf(y).getRank() ? x : y;
  return MulOp::create(b, loc, longer.getType(), x, y);
}

Value sub(OpBuilder &b, Location loc, Value x, Value y) {
  Value longer = tensorTypeOf(x).getRank() >= tensorTypeOf(y).getRank() ? x : y;
  return SubOp::create(b, loc, longer.getType(), x, y);
}

} // namespace

LogicalResult LinearOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  Location loc = getLoc();
  Value dy = dys[0];
  auto wType = tensorTypeOf(getWeight());
  auto wtType = RankedTensorType::get(
      {wType.getDimSize(1), wType.getDimSize(0)}, wType.getElementType());
  Value wt = TransposeOp::create(b, loc, wtType, getWeight(),
                                 b.getDenseI64ArrayAttr({1, 0}));
  grads.push_back(
      LinearOp::create(b, loc, getInput().getType(), dy, wt).getResult());
  grads.push_back(
      LinearWeightGradOp::create(b, loc, wType, dy, getInput()).getResult());
  return success();
}

LogicalResult AddOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  grads.push_back(reduceTo(b, getLoc(), dys[0], getLhs()));
  grads.push_back(reduceTo(b, getLoc(), dys[0], getRhs()));
  return success();
}

LogicalResult SubOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  grads.push_back(reduceTo(b, getLoc(), dys[0], getLhs()));
  Value neg = NegOp::create(b, getLoc(), dys[0]);
  grads.push_back(reduceTo(b, getLoc(), neg, getRhs()));
  return success();
}

LogicalResult MulOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  Location loc = getLoc();
  grads.push_back(reduceTo(b, loc, mul(b, loc, dys[0], getRhs()), getLhs()));
  grads.push_back(reduceTo(b, loc, mul(b, loc, dys[0], getLhs()), getRhs()));
  return success();
}

LogicalResult DivOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  Location loc = getLoc();
  Value dy = dys[0];
  grads.push_back(reduceTo(
      b, loc, DivOp::create(b, loc, dy.getType(), dy, getRhs()), getLhs()));
  // d(a/b)/db = -(a/b)/b
  Value q = DivOp::create(b, loc, dy.getType(), mul(b, loc, dy, getResult()),
                          getRhs());
  grads.push_back(reduceTo(b, loc, NegOp::create(b, loc, q), getRhs()));
  return success();
}

LogicalResult SigmoidOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  Location loc = getLoc();
  Value s = getResult();
  Value oneMinus = sub(b, loc, scalar(b, loc, 1.0f), s);
  grads.push_back(mul(b, loc, dys[0], mul(b, loc, s, oneMinus)));
  return success();
}

LogicalResult TanhOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                               SmallVectorImpl<Value> &grads) {
  Location loc = getLoc();
  Value t = getResult();
  Value oneMinus = sub(b, loc, scalar(b, loc, 1.0f), mul(b, loc, t, t));
  grads.push_back(mul(b, loc, dys[0], oneMinus));
  return success();
}

LogicalResult ReluOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                               SmallVectorImpl<Value> &grads) {
  grads.push_back(ReluGradOp::create(b, getLoc(), getType(), dys[0], getInput())
                      .getResult());
  return success();
}

LogicalResult ExpOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  grads.push_back(mul(b, getLoc(), dys[0], getResult()));
  return success();
}

LogicalResult NegOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  grads.push_back(NegOp::create(b, getLoc(), dys[0]));
  return success();
}

LogicalResult DropoutOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  // The mask is a pure function of (key, stream, index): applying the same
  // dropout to the adjoint multiplies it by the same mask and scale.
  grads.push_back(DropoutOp::create(b, getLoc(), dys[0].getType(), dys[0],
                                    getKey(), getPAttr(), getStreamAttr())
                      .getResult());
  return success();
}

LogicalResult SplitOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                SmallVectorImpl<Value> &grads) {
  SmallVector<Value> parts;
  for (auto [dy, part] : llvm::zip(dys, getResults()))
    parts.push_back(dy ? dy
                       : ZerosLikeOp::create(b, getLoc(), part).getResult());
  grads.push_back(
      ConcatOp::create(b, getLoc(), getInput().getType(), parts).getResult());
  return success();
}

LogicalResult ConcatOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                 SmallVectorImpl<Value> &grads) {
  int64_t offset = 0;
  for (Value in : getInputs()) {
    grads.push_back(
        SliceOp::create(b, getLoc(), in.getType(), dys[0], offset).getResult());
    offset += tensorTypeOf(in).getShape().back();
  }
  return success();
}

LogicalResult StackOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                SmallVectorImpl<Value> &grads) {
  for (auto [k, in] : llvm::enumerate(getInputs()))
    grads.push_back(
        IndexOp::create(b, getLoc(), in.getType(), dys[0], k).getResult());
  return success();
}

LogicalResult IndexOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                SmallVectorImpl<Value> &grads) {
  auto in = tensorTypeOf(getInput());
  if (in.isDynamicDim(0))
    return emitOpError(
        "cannot differentiate an index into a dynamic dimension");
  SmallVector<Value> rows;
  for (int64_t k = 0; k < in.getDimSize(0); ++k) {
    if (k == static_cast<int64_t>(getIndex())) {
      rows.push_back(dys[0]);
      continue;
    }
    Value row = IndexOp::create(b, getLoc(), getType(), getInput(), k);
    rows.push_back(ZerosLikeOp::create(b, getLoc(), row));
  }
  grads.push_back(StackOp::create(b, getLoc(), in, rows).getResult());
  return success();
}

LogicalResult TransposeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  grads.push_back(TransposeOp::create(b, getLoc(), getInput().getType(), dys[0],
                                      b.getDenseI64ArrayAttr(inverse))
                      .getResult());
  return success();
}

LogicalResult EmbeddingOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  grads.push_back(Value()); // ids
  grads.push_back(EmbeddingGradOp::create(b, getLoc(), getWeight().getType(),
                                          getIds(), dys[0])
                      .getResult());
  return success();
}

LogicalResult CrossEntropyOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                       SmallVectorImpl<Value> &grads) {
  grads.push_back(CrossEntropyGradOp::create(b, getLoc(), getLogits().getType(),
                                             getLogits(), getTargets(), dys[0],
                                             getIgnoreIndexAttr())
                      .getResult());
  grads.push_back(Value()); // targets
  return success();
}

LogicalResult SoftmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                  SmallVectorImpl<Value> &grads) {
  // dx = y * (dy - Σ_row dy * y)
  Location loc = getLoc();
  Value y = getResult();
  Value s = RowSumOp::create(b, loc, mul(b, loc, dys[0], y));
  grads.push_back(mul(b, loc, y, sub(b, loc, dys[0], s)));
  return success();
}

LogicalResult LogSoftmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                     SmallVectorImpl<Value> &grads) {
  // dx = dy - exp(y) * Σ_row dy
  Location loc = getLoc();
  Value p = ExpOp::create(b, loc, getResult());
  Value s = RowSumOp::create(b, loc, dys[0]);
  grads.push_back(sub(b, loc, dys[0], mul(b, loc, p, s)));
  return success();
}

LogicalResult NllOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  grads.push_back(NllGradOp::create(b, getLoc(), getLogp().getType(), getLogp(),
                                    getTargets(), dys[0], getIgnoreIndexAttr())
                      .getResult());
  grads.push_back(Value()); // targets
  return success();
}

LogicalResult MeanOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                               SmallVectorImpl<Value> &grads) {
  grads.push_back(
      MeanGradOp::create(b, getLoc(), getInput().getType(), getInput(), dys[0])
          .getResult());
  return success();
}

LogicalResult RsqrtOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                SmallVectorImpl<Value> &grads) {
  // d x^(-1/2) = -1/2 · r³
  Location loc = getLoc();
  Value r = getResult();
  Value r3 = mul(b, loc, r, mul(b, loc, r, r));
  grads.push_back(mul(b, loc, dys[0], mul(b, loc, scalar(b, loc, -0.5f), r3)));
  return success();
}

LogicalResult SqrtOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                               SmallVectorImpl<Value> &grads) {
  // d √x = 1 / (2 √x)
  Location loc = getLoc();
  Value twice = mul(b, loc, scalar(b, loc, 2.0f), getResult());
  grads.push_back(
      DivOp::create(b, loc, dys[0].getType(), dys[0], twice).getResult());
  return success();
}

LogicalResult AbsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                              SmallVectorImpl<Value> &grads) {
  // d |x| = sign(x), 0 at 0 as in PyTorch.
  Location loc = getLoc();
  grads.push_back(mul(b, loc, dys[0], SignOp::create(b, loc, getInput())));
  return success();
}

LogicalResult LayerNormOp::buildVJP(OpBuilder &b, ArrayRef<Value> dys,
                                    SmallVectorImpl<Value> &grads) {
  // x̂ = (x - μ)·σ⁻¹, y = x̂·w + b. With g = dy·w:
  //   dx = σ⁻¹ · (g - mean_row(g) - x̂ · mean_row(g · x̂))
  //   dw = Σ dy · x̂,  db = Σ dy  (over all leading positions)
  Location loc = getLoc();
  Value x = getInput(), dy = dys[0];
  auto type = tensorTypeOf(x);
  float invF = 1.0f / static_cast<float>(type.getShape().back());
  Value inv = scalar(b, loc, invF);
  Value mean = mul(b, loc, RowSumOp::create(b, loc, x), inv);
  Value xc = sub(b, loc, x, mean);
  Value var = mul(b, loc, RowSumOp::create(b, loc, mul(b, loc, xc, xc)), inv);
  Value eps = scalar(b, loc, getEpsilon().convertToFloat());
  Value sigmaInv = RsqrtOp::create(
      b, loc, AddOp::create(b, loc, var.getType(), var, eps).getResult());
  Value xhat = mul(b, loc, xc, sigmaInv);
  Value g = mul(b, loc, dy, getWeight());
  Value meanG = mul(b, loc, RowSumOp::create(b, loc, g), inv);
  Value meanGX =
      mul(b, loc, RowSumOp::create(b, loc, mul(b, loc, g, xhat)), inv);
  Value inner = sub(b, loc, sub(b, loc, g, meanG), mul(b, loc, xhat, meanGX));
  grads.push_back(mul(b, loc, sigmaInv, inner));
  grads.push_back(reduceTo(b, loc, mul(b, loc, dy, xhat), getWeight()));
  grads.push_back(reduceTo(b, loc, dy, getBias()));
  return success();
}
