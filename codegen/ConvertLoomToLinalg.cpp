//===- ConvertLoomToLinalg.cpp - loom ops to linalg/tensor/scf --------===//
//
// One rewrite pattern per loom op. Types do not change (tensors stay
// tensors), so a greedy rewrite suffices; the pass fails if any loom op is
// left. Run-time sizes come from `tensor.dim` of the operands.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"
#include "ir/LoomOps.h"
#include "ir/Philox.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace loom {
#define GEN_PASS_DEF_CONVERTLOOMTOLINALG
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

/// The sizes of `v` as fold results (static attributes or tensor.dim).
SmallVector<OpFoldResult> sizesOf(OpBuilder &b, Location loc, Value v) {
  return tensor::getMixedSizes(b, loc, v);
}

/// An uninitialized tensor of `type` whose dynamic sizes are taken from
/// `sizes` (which lists every dimension, or may be empty for static types).
Value emptyTensor(OpBuilder &b, Location loc, RankedTensorType type,
                  ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> mixed;
  for (int64_t d = 0; d < type.getRank(); ++d)
    mixed.push_back(type.isDynamicDim(d)
                        ? sizes[d]
                        : OpFoldResult(b.getIndexAttr(type.getDimSize(d))));
  return tensor::EmptyOp::create(b, loc, mixed, type.getElementType());
}

Value zeroFilled(OpBuilder &b, Location loc, RankedTensorType type,
                 ArrayRef<OpFoldResult> sizes, float value = 0.0f) {
  Value empty = emptyTensor(b, loc, type, sizes);
  Value c = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
  return linalg::FillOp::create(b, loc, c, empty).getResult(0);
}

SmallVector<utils::IteratorType> parallel(unsigned n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

arith::FastMathFlagsAttr contract(OpBuilder &b) {
  return arith::FastMathFlagsAttr::get(b.getContext(),
                                       arith::FastMathFlags::contract);
}

/// The loop dimensions d0 … d(n-1), for maps over the leading positions.
SmallVector<AffineExpr> leadingDims(unsigned n, MLIRContext *ctx) {
  SmallVector<AffineExpr> dims;
  for (unsigned d = 0; d < n; ++d)
    dims.push_back(getAffineDimExpr(d, ctx));
  return dims;
}

/// init + Σ lhs · rhs over the reduction loops of `maps`/`iters`, with
/// `contract` fast-math so that LLVM forms FMAs.
Value multiplyAccumulate(OpBuilder &b, Location loc, RankedTensorType type,
                         Value lhs, Value rhs, Value init,
                         ArrayRef<AffineMap> maps,
                         ArrayRef<utils::IteratorType> iters) {
  auto fm = contract(b);
  auto g = linalg::GenericOp::create(
      b, loc, type, ValueRange{lhs, rhs}, ValueRange{init}, maps, iters,
      [&](OpBuilder &bb, Location l, ValueRange args) {
        Value m = arith::MulFOp::create(bb, l, args[0], args[1], fm);
        Value s = arith::AddFOp::create(bb, l, args[2], m, fm);
        linalg::YieldOp::create(bb, l, s);
      });
  return g.getResult(0);
}

/// x[..., I] · W[O, I]ᵀ as a contraction over Wᵀ[I, O] with loops ordered
/// (leading..., i, o): the innermost loop walks rows of Wᵀ and of the result
/// contiguously, which LLVM vectorizes into FMAs for the target's width.
struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value w = op.getWeight();
    Value wt = transposedWeight(rewriter, w);
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    auto resType = cast<RankedTensorType>(op.getType());
    unsigned lead = xType.getRank() - 1;
    MLIRContext *ctx = getContext();
    SmallVector<AffineExpr> xMap = leadingDims(lead, ctx), outMap = xMap;
    AffineExpr k = getAffineDimExpr(lead, ctx),
               o = getAffineDimExpr(lead + 1, ctx);
    xMap.push_back(k);
    outMap.push_back(o);
    unsigned numDims = lead + 2;
    SmallVector<AffineMap> maps{AffineMap::get(numDims, 0, xMap, ctx),
                                AffineMap::get(numDims, 0, {k, o}, ctx),
                                AffineMap::get(numDims, 0, outMap, ctx)};
    auto iters = parallel(numDims);
    iters[lead] = utils::IteratorType::reduction;
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getInput());
    sizes.back() = rewriter.getIndexAttr(resType.getShape().back());
    Value init = zeroFilled(rewriter, loc, resType, sizes);
    rewriter.replaceOp(op,
                       multiplyAccumulate(rewriter, loc, resType, op.getInput(),
                                          wt, init, maps, iters));
    return success();
  }

  /// Wᵀ, computed once right after W is defined (at function entry for a
  /// parameter), and shared by every linear op that uses W.
  static Value transposedWeight(PatternRewriter &rewriter, Value w) {
    for (Operation *user : w.getUsers())
      if (auto t = dyn_cast<linalg::TransposeOp>(user))
        if (t->hasAttr("loom.packed_weight"))
          return t->getResult(0);
    OpBuilder::InsertionGuard guard(rewriter);
    if (auto arg = dyn_cast<BlockArgument>(w))
      rewriter.setInsertionPointToStart(arg.getOwner());
    else
      rewriter.setInsertionPointAfterValue(w);
    auto wType = cast<RankedTensorType>(w.getType());
    auto tType = RankedTensorType::get(
        {wType.getDimSize(1), wType.getDimSize(0)}, wType.getElementType());
    Value empty = tensor::EmptyOp::create(
        rewriter, w.getLoc(), tType.getShape(), tType.getElementType());
    auto t = linalg::TransposeOp::create(rewriter, w.getLoc(), w, empty,
                                         ArrayRef<int64_t>{1, 0});
    t->setAttr("loom.packed_weight", rewriter.getUnitAttr());
    return t->getResult(0);
  }
};

/// Elementwise binary op with trailing-aligned broadcasting.
template <typename LoomOp, typename ArithOp>
struct LowerBinary : OpRewritePattern<LoomOp> {
  using OpRewritePattern<LoomOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(LoomOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value a = op.getLhs(), b = op.getRhs();
    auto resType = cast<RankedTensorType>(op.getType());
    unsigned rank = resType.getRank();
    MLIRContext *ctx = op.getContext();
    auto mapFor = [&](Value v) {
      unsigned r = cast<RankedTensorType>(v.getType()).getRank();
      SmallVector<AffineExpr> exprs;
      for (unsigned d = rank - r; d < rank; ++d)
        exprs.push_back(getAffineDimExpr(d, ctx));
      return AffineMap::get(rank, 0, exprs, ctx);
    };
    Value longer =
        cast<RankedTensorType>(a.getType()).getRank() >= (int64_t)rank ? a : b;
    Value init =
        emptyTensor(rewriter, loc, resType, sizesOf(rewriter, loc, longer));
    SmallVector<AffineMap> maps{mapFor(a), mapFor(b),
                                AffineMap::getMultiDimIdentityMap(rank, ctx)};
    auto generic = linalg::GenericOp::create(
        rewriter, loc, resType, ValueRange{a, b}, ValueRange{init}, maps,
        parallel(rank), [&](OpBuilder &bb, Location l, ValueRange args) {
          Value r = ArithOp::create(bb, l, args[0], args[1]);
          linalg::YieldOp::create(bb, l, r);
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

/// A linalg.generic applying `body` to every element of `input`.
Value mapElements(OpBuilder &b, Location loc, Value input,
                  function_ref<Value(OpBuilder &, Location, Value)> body) {
  auto type = cast<RankedTensorType>(input.getType());
  unsigned rank = type.getRank();
  Value init = emptyTensor(b, loc, type, sizesOf(b, loc, input));
  auto id = AffineMap::getMultiDimIdentityMap(rank, b.getContext());
  auto generic = linalg::GenericOp::create(
      b, loc, type, ValueRange{input}, ValueRange{init},
      SmallVector<AffineMap>{id, id}, parallel(rank),
      [&](OpBuilder &bb, Location l, ValueRange args) {
        linalg::YieldOp::create(bb, l, body(bb, l, args[0]));
      });
  return generic.getResult(0);
}

/// sign(x): -1, 0 or 1 (0 and NaN are returned as they are).
Value signOf(OpBuilder &b, Location l, Value x) {
  Value zero = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
  Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
  Value minusOne = arith::ConstantOp::create(b, l, b.getF32FloatAttr(-1));
  Value pos = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, x, zero);
  Value neg = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OLT, x, zero);
  Value r = arith::SelectOp::create(b, l, pos, one, x);
  return arith::SelectOp::create(b, l, neg, minusOne, r);
}

Value sigmoidOf(OpBuilder &b, Location l, Value x) {
  Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1.0f));
  Value neg = arith::NegFOp::create(b, l, x);
  Value e = math::ExpOp::create(b, l, neg);
  Value d = arith::AddFOp::create(b, l, one, e);
  return arith::DivFOp::create(b, l, one, d);
}

template <typename LoomOp> struct LowerUnary : OpRewritePattern<LoomOp> {
  using OpRewritePattern<LoomOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(LoomOp op,
                                PatternRewriter &rewriter) const override {
    Value r = mapElements(rewriter, op.getLoc(), op.getInput(),
                          [](OpBuilder &b, Location l, Value x) -> Value {
                            if constexpr (std::is_same_v<LoomOp, SigmoidOp>)
                              return sigmoidOf(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, TanhOp>)
                              return math::TanhOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, ExpOp>)
                              return math::ExpOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, NegOp>)
                              return arith::NegFOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, RsqrtOp>)
                              return math::RsqrtOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, SqrtOp>)
                              return math::SqrtOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, AbsOp>)
                              return math::AbsFOp::create(b, l, x);
                            else if constexpr (std::is_same_v<LoomOp, SignOp>)
                              return signOf(b, l, x);
                            else {
                              Value zero = arith::ConstantOp::create(
                                  b, l, b.getF32FloatAttr(0));
                              return arith::MaximumFOp::create(b, l, x, zero);
                            }
                          });
    rewriter.replaceOp(op, r);
    return success();
  }
};

/// Philox4x32-10's first word (ir/Philox.h), built from i32/i64 arithmetic.
Value philoxFirstWord(OpBuilder &b, Location l, Value c0, Value c1, Value c2,
                      Value c3, Value k0, Value k1) {
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  auto c64 = [&](uint64_t v) {
    return arith::ConstantOp::create(b, l, b.getI64IntegerAttr(int64_t(v)));
  };
  auto c32 = [&](uint32_t v) {
    return arith::ConstantOp::create(b, l, b.getI32IntegerAttr(int32_t(v)));
  };
  Value m0 = c64(philox::kM0), m1 = c64(philox::kM1), sh = c64(32);
  Value w0 = c32(philox::kW0), w1 = c32(philox::kW1);
  auto mulHiLo = [&](Value m, Value c, Value &hi, Value &lo) {
    Value p =
        arith::MulIOp::create(b, l, m, arith::ExtUIOp::create(b, l, i64, c));
    hi =
        arith::TruncIOp::create(b, l, i32, arith::ShRUIOp::create(b, l, p, sh));
    lo = arith::TruncIOp::create(b, l, i32, p);
  };
  for (int r = 0; r < philox::kRounds; ++r) {
    Value hi0, lo0, hi1, lo1;
    mulHiLo(m0, c0, hi0, lo0);
    mulHiLo(m1, c2, hi1, lo1);
    Value n0 =
        arith::XOrIOp::create(b, l, arith::XOrIOp::create(b, l, hi1, c1), k0);
    Value n2 =
        arith::XOrIOp::create(b, l, arith::XOrIOp::create(b, l, hi0, c3), k1);
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 = arith::AddIOp::create(b, l, k0, w0);
    k1 = arith::AddIOp::create(b, l, k1, w1);
  }
  return c0;
}

/// Without a key, the identity. With one, the counter-based mask of
/// ir/Philox.h over each element's row-major index (see loom.dropout).
struct LowerDropout : OpRewritePattern<DropoutOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DropoutOp op,
                                PatternRewriter &rewriter) const override {
    Value key = op.getKey();
    if (!key) {
      rewriter.replaceOp(op, op.getInput()); // the identity at inference
      return success();
    }
    Location loc = op.getLoc();
    OpBuilder &b = rewriter;
    Type i32 = b.getI32Type(), i64 = b.getI64Type();
    Value zeroIdx = arith::ConstantIndexOp::create(b, loc, 0);
    Value oneIdx = arith::ConstantIndexOp::create(b, loc, 1);
    Value seed = tensor::ExtractOp::create(b, loc, key, ValueRange{zeroIdx});
    Value step = tensor::ExtractOp::create(b, loc, key, ValueRange{oneIdx});
    Value sh = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(32));
    Value k0 = arith::TruncIOp::create(b, loc, i32, seed);
    Value k1 = arith::TruncIOp::create(
        b, loc, i32, arith::ShRUIOp::create(b, loc, seed, sh));
    Value c3 = arith::TruncIOp::create(b, loc, i32, step);
    Value c2 = arith::ConstantOp::create(
        b, loc, b.getI32IntegerAttr(int32_t(op.getStream())));
    Value zero64 = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(0));
    Value on =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, seed, zero64);
    float p = op.getP().convertToFloat();
    Value pv = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(p));
    Value scale =
        arith::ConstantOp::create(b, loc, b.getF32FloatAttr(1.0f / (1.0f - p)));
    Value zeroF = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
    Value inv24 = arith::ConstantOp::create(
        b, loc, b.getF32FloatAttr(1.0f / 16777216.0f));
    Value eight = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(8));
    SmallVector<OpFoldResult> sizes = sizesOf(b, loc, op.getInput());
    SmallVector<Value> sizeVals;
    for (OpFoldResult s : sizes)
      sizeVals.push_back(getValueOrCreateConstantIndexOp(b, loc, s));
    Value r = mapElements(
        b, loc, op.getInput(), [&](OpBuilder &bb, Location l, Value x) {
          // Row-major linear index of the element.
          Value n = arith::ConstantIndexOp::create(bb, l, 0);
          for (auto [d, size] : llvm::enumerate(sizeVals)) {
            Value i = linalg::IndexOp::create(bb, l, d);
            n = arith::AddIOp::create(bb, l,
                                      arith::MulIOp::create(bb, l, n, size), i);
          }
          Value n64 = arith::IndexCastUIOp::create(bb, l, i64, n);
          Value lo = arith::TruncIOp::create(bb, l, i32, n64);
          Value hi = arith::TruncIOp::create(
              bb, l, i32, arith::ShRUIOp::create(bb, l, n64, sh));
          Value w = philoxFirstWord(bb, l, lo, hi, c2, c3, k0, k1);
          Value u = arith::MulFOp::create(
              bb, l,
              arith::UIToFPOp::create(bb, l, bb.getF32Type(),
                                      arith::ShRUIOp::create(bb, l, w, eight)),
              inv24);
          Value kept =
              arith::CmpFOp::create(bb, l, arith::CmpFPredicate::OGE, u, pv);
          Value dropped = arith::SelectOp::create(
              bb, l, kept, arith::MulFOp::create(bb, l, x, scale), zeroF);
          return arith::SelectOp::create(bb, l, on, dropped, x).getResult();
        });
    rewriter.replaceOp(op, r);
    return success();
  }
};

struct LowerZeros : OpRewritePattern<ZerosOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ZerosOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> sizes;
    unsigned next = 0;
    for (int64_t d = 0; d < type.getRank(); ++d)
      sizes.push_back(type.isDynamicDim(d) ? OpFoldResult(op.getSizes()[next++])
                                           : OpFoldResult(rewriter.getIndexAttr(
                                                 type.getDimSize(d))));
    rewriter.replaceOp(op, zeroFilled(rewriter, op.getLoc(), type, sizes));
    return success();
  }
};

struct LowerSplit : OpRewritePattern<SplitOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SplitOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getInput());
    int64_t rank = sizes.size();
    int64_t part =
        cast<RankedTensorType>(op.getResult(0).getType()).getShape().back();
    sizes.back() = rewriter.getIndexAttr(part);
    SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
    SmallVector<Value> parts;
    for (unsigned p = 0; p < op.getNumResults(); ++p) {
      SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
      offsets.back() = rewriter.getIndexAttr(p * part);
      parts.push_back(tensor::ExtractSliceOp::create(
          rewriter, loc, cast<RankedTensorType>(op.getResult(p).getType()),
          op.getInput(), offsets, sizes, strides));
    }
    rewriter.replaceOp(op, parts);
    return success();
  }
};

struct LowerConcat : OpRewritePattern<ConcatOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConcatOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getInputs()[0]);
    sizes.back() = rewriter.getIndexAttr(type.getShape().back());
    Value result = emptyTensor(rewriter, loc, type, sizes);
    int64_t rank = type.getRank(), col = 0;
    SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
    for (Value in : op.getInputs()) {
      SmallVector<OpFoldResult> inSizes = sizesOf(rewriter, loc, in);
      SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
      offsets.back() = rewriter.getIndexAttr(col);
      result = tensor::InsertSliceOp::create(rewriter, loc, in, result, offsets,
                                             inSizes, strides);
      col += cast<RankedTensorType>(in.getType()).getShape().back();
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LowerStack : OpRewritePattern<StackOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(StackOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> inner = sizesOf(rewriter, loc, op.getInputs()[0]);
    SmallVector<OpFoldResult> sizes{
        rewriter.getIndexAttr(op.getInputs().size())};
    sizes.append(inner.begin(), inner.end());
    Value result = emptyTensor(rewriter, loc, type, sizes);
    SmallVector<OpFoldResult> sliceSizes{rewriter.getIndexAttr(1)};
    sliceSizes.append(inner.begin(), inner.end());
    SmallVector<OpFoldResult> strides(type.getRank(), rewriter.getIndexAttr(1));
    for (auto [k, in] : llvm::enumerate(op.getInputs())) {
      SmallVector<OpFoldResult> offsets(type.getRank(),
                                        rewriter.getIndexAttr(0));
      offsets[0] = rewriter.getIndexAttr(k);
      result = tensor::InsertSliceOp::create(rewriter, loc, in, result, offsets,
                                             sliceSizes, strides);
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LowerIndex : OpRewritePattern<IndexOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(IndexOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getInput());
    sizes[0] = rewriter.getIndexAttr(1);
    SmallVector<OpFoldResult> offsets(sizes.size(), rewriter.getIndexAttr(0));
    offsets[0] = rewriter.getIndexAttr(op.getIndex());
    SmallVector<OpFoldResult> strides(sizes.size(), rewriter.getIndexAttr(1));
    rewriter.replaceOpWithNewOp<tensor::ExtractSliceOp>(
        op, cast<RankedTensorType>(op.getType()), op.getInput(), offsets, sizes,
        strides);
    return success();
  }
};

struct LowerTranspose : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> in = sizesOf(rewriter, loc, op.getInput());
    SmallVector<OpFoldResult> sizes;
    for (int64_t p : op.getPermutation())
      sizes.push_back(in[p]);
    Value init =
        emptyTensor(rewriter, loc, cast<RankedTensorType>(op.getType()), sizes);
    auto t = linalg::TransposeOp::create(rewriter, loc, op.getInput(), init,
                                         op.getPermutation());
    rewriter.replaceOp(op, t->getResult(0));
    return success();
  }
};

struct LowerEmbedding : OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = type.getRank();
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getIds());
    sizes.push_back(rewriter.getIndexAttr(type.getShape().back()));
    Value init = emptyTensor(rewriter, loc, type, sizes);
    MLIRContext *ctx = getContext();
    SmallVector<AffineExpr> idsExprs;
    for (unsigned d = 0; d + 1 < rank; ++d)
      idsExprs.push_back(getAffineDimExpr(d, ctx));
    SmallVector<AffineMap> maps{AffineMap::get(rank, 0, idsExprs, ctx),
                                AffineMap::getMultiDimIdentityMap(rank, ctx)};
    Value table = op.getWeight();
    auto generic = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{op.getIds()}, ValueRange{init}, maps,
        parallel(rank), [&](OpBuilder &b, Location l, ValueRange args) {
          Value row =
              arith::IndexCastOp::create(b, l, b.getIndexType(), args[0]);
          Value col = linalg::IndexOp::create(b, l, rank - 1);
          Value v =
              tensor::ExtractOp::create(b, l, table, ValueRange{row, col});
          linalg::YieldOp::create(b, l, v);
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

/// Reduces the last dimension of `input` (after `pre` maps each element,
/// given the row's value in `rowArg` if any) with `combine`, starting at
/// `initValue`. Returns a tensor of the leading dimensions.
Value reduceRows(
    OpBuilder &b, Location loc, Value input, Value rowArg, float initValue,
    function_ref<Value(OpBuilder &, Location, Value, Value)> pre,
    function_ref<Value(OpBuilder &, Location, Value, Value)> combine) {
  auto type = cast<RankedTensorType>(input.getType());
  unsigned rank = type.getRank();
  SmallVector<OpFoldResult> sizes = sizesOf(b, loc, input);
  sizes.pop_back();
  auto outType =
      RankedTensorType::get(type.getShape().drop_back(), type.getElementType());
  Value init = zeroFilled(b, loc, outType, sizes, initValue);
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineExpr> lead;
  for (unsigned d = 0; d + 1 < rank; ++d)
    lead.push_back(getAffineDimExpr(d, ctx));
  AffineMap rowMap = AffineMap::get(rank, 0, lead, ctx);
  SmallVector<Value> ins{input};
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx)};
  if (rowArg) {
    ins.push_back(rowArg);
    maps.push_back(rowMap);
  }
  maps.push_back(rowMap);
  auto iters = parallel(rank);
  iters.back() = utils::IteratorType::reduction;
  auto generic = linalg::GenericOp::create(
      b, loc, outType, ins, ValueRange{init}, maps, iters,
      [&](OpBuilder &bb, Location l, ValueRange args) {
        Value x = pre(bb, l, args[0], rowArg ? args[1] : Value());
        linalg::YieldOp::create(bb, l, combine(bb, l, args.back(), x));
      });
  return generic.getResult(0);
}

/// Applies `f(x, row values...)` to every element, with per-row tensors.
Value mapWithRows(OpBuilder &b, Location loc, Value input, ValueRange rows,
                  ValueRange features,
                  function_ref<Value(OpBuilder &, Location, ValueRange)> f) {
  auto type = cast<RankedTensorType>(input.getType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineExpr> lead;
  for (unsigned d = 0; d + 1 < rank; ++d)
    lead.push_back(getAffineDimExpr(d, ctx));
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  SmallVector<Value> ins{input};
  SmallVector<AffineMap> maps{id};
  for (Value r : rows) {
    ins.push_back(r);
    maps.push_back(AffineMap::get(rank, 0, lead, ctx));
  }
  for (Value fv : features) {
    ins.push_back(fv);
    maps.push_back(AffineMap::get(rank, 0, getAffineDimExpr(rank - 1, ctx)));
  }
  maps.push_back(id);
  Value init = emptyTensor(b, loc, type, sizesOf(b, loc, input));
  auto generic = linalg::GenericOp::create(
      b, loc, type, ins, ValueRange{init}, maps, parallel(rank),
      [&](OpBuilder &bb, Location l, ValueRange args) {
        linalg::YieldOp::create(bb, l, f(bb, l, args.drop_back()));
      });
  return generic.getResult(0);
}

Value identityArg(OpBuilder &, Location, Value x, Value) { return x; }
Value addF(OpBuilder &b, Location l, Value acc, Value x) {
  return arith::AddFOp::create(b, l, acc, x);
}

struct LowerSoftmax : OpRewritePattern<SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SoftmaxOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, lowerSoftmax(rewriter, op.getLoc(), op.getInput(),
                                        /*log=*/false));
    return success();
  }
  static Value lowerSoftmax(OpBuilder &b, Location loc, Value x, bool log) {
    Value mx =
        reduceRows(b, loc, x, Value(), -INFINITY, identityArg,
                   [](OpBuilder &bb, Location l, Value acc, Value v) -> Value {
                     return arith::MaximumFOp::create(bb, l, acc, v);
                   });
    Value sum = reduceRows(
        b, loc, x, mx, 0.0f,
        [](OpBuilder &bb, Location l, Value v, Value m) -> Value {
          return math::ExpOp::create(bb, l, arith::SubFOp::create(bb, l, v, m));
        },
        addF);
    return mapWithRows(
        b, loc, x, ValueRange{mx, sum}, ValueRange{},
        [log](OpBuilder &bb, Location l, ValueRange a) -> Value {
          Value shifted = arith::SubFOp::create(bb, l, a[0], a[1]);
          if (log)
            return arith::SubFOp::create(bb, l, shifted,
                                         math::LogOp::create(bb, l, a[2]));
          return arith::DivFOp::create(
              bb, l, math::ExpOp::create(bb, l, shifted), a[2]);
        });
  }
};

struct LowerLogSoftmax : OpRewritePattern<LogSoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LogSoftmaxOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, LowerSoftmax::lowerSoftmax(rewriter, op.getLoc(),
                                                      op.getInput(),
                                                      /*log=*/true));
    return success();
  }
};

struct LowerLayerNorm : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    int64_t f = cast<RankedTensorType>(x.getType()).getShape().back();
    float invF = 1.0f / static_cast<float>(f);
    Value sum = reduceRows(rewriter, loc, x, Value(), 0.0f, identityArg, addF);
    Value sq = reduceRows(
        rewriter, loc, x, sum, 0.0f,
        [invF](OpBuilder &b, Location l, Value v, Value s) -> Value {
          Value n = arith::ConstantOp::create(b, l, b.getF32FloatAttr(invF));
          Value mean = arith::MulFOp::create(b, l, s, n);
          Value d = arith::SubFOp::create(b, l, v, mean);
          return arith::MulFOp::create(b, l, d, d);
        },
        addF);
    float eps = op.getEpsilon().convertToFloat();
    Value r = mapWithRows(
        rewriter, loc, x, ValueRange{sum, sq},
        ValueRange{op.getWeight(), op.getBias()},
        [invF, eps](OpBuilder &b, Location l, ValueRange a) -> Value {
          Value n = arith::ConstantOp::create(b, l, b.getF32FloatAttr(invF));
          Value e = arith::ConstantOp::create(b, l, b.getF32FloatAttr(eps));
          Value mean = arith::MulFOp::create(b, l, a[1], n);
          Value var = arith::MulFOp::create(b, l, a[2], n);
          Value inv =
              math::RsqrtOp::create(b, l, arith::AddFOp::create(b, l, var, e));
          Value norm = arith::MulFOp::create(
              b, l, arith::SubFOp::create(b, l, a[0], mean), inv);
          return arith::AddFOp::create(
              b, l, arith::MulFOp::create(b, l, norm, a[3]), a[4]);
        });
    rewriter.replaceOp(op, r);
    return success();
  }
};

/// loom.scan → scf.for over time. Iteration arguments: the states, then the
/// stacked outputs. With lengths, batch entries past their length keep their
/// state and get zero outputs (a select in the step's epilogue).
struct LowerScan : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ScanOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value seq0 = op.getInputs()[0];
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value T = tensor::DimOp::create(rewriter, loc, seq0, c0);
    Value B = tensor::DimOp::create(rewriter, loc, seq0, c1);
    unsigned numOutputs = op.getNumOutputs();
    unsigned numStates = op.getInits().size();

    SmallVector<Value> iterInits(op.getInits().begin(), op.getInits().end());
    for (unsigned k = 0; k < numOutputs; ++k) {
      auto type = cast<RankedTensorType>(op.getResult(k).getType());
      SmallVector<OpFoldResult> sizes;
      for (int64_t d = 0; d < type.getRank(); ++d) {
        if (!type.isDynamicDim(d))
          sizes.push_back(rewriter.getIndexAttr(type.getDimSize(d)));
        else if (d == 0)
          sizes.push_back(T);
        else if (d == 1)
          sizes.push_back(B);
        else
          return rewriter.notifyMatchFailure(op, "only T and B may be dynamic");
      }
      iterInits.push_back(emptyTensor(rewriter, loc, type, sizes));
    }
    auto forOp = scf::ForOp::create(rewriter, loc, c0, T, c1, iterInits);
    forOp->setAttr(kTimeLoopAttr, rewriter.getUnitAttr());
    Block *body = forOp.getBody();
    rewriter.setInsertionPointToStart(body);
    Value iv = forOp.getInductionVar();
    Value t = iv;
    if (op.getReverse()) {
      Value last = arith::SubIOp::create(rewriter, loc, T, c1);
      t = arith::SubIOp::create(rewriter, loc, last, iv);
    }
    // Step slices of the input sequences.
    SmallVector<Value> blockArgs;
    for (Value seq : op.getInputs()) {
      SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, seq);
      sizes[0] = rewriter.getIndexAttr(1);
      SmallVector<OpFoldResult> offsets(sizes.size(), rewriter.getIndexAttr(0));
      offsets[0] = t;
      SmallVector<OpFoldResult> strides(sizes.size(), rewriter.getIndexAttr(1));
      auto seqType = cast<RankedTensorType>(seq.getType());
      auto stepType = RankedTensorType::get(seqType.getShape().drop_front(),
                                            seqType.getElementType());
      blockArgs.push_back(tensor::ExtractSliceOp::create(
          rewriter, loc, stepType, seq, offsets, sizes, strides));
    }
    for (unsigned k = 0; k < numStates; ++k)
      blockArgs.push_back(forOp.getRegionIterArgs()[k]);

    Block &scanBody = op.getBodyBlock();
    auto yield = cast<YieldOp>(scanBody.getTerminator());
    rewriter.inlineBlockBefore(&scanBody, body, body->end(), blockArgs);
    rewriter.setInsertionPoint(yield);

    // Mask by lengths: active[b] = t < lengths[b].
    Value tI64;
    if (op.getLengths())
      tI64 =
          arith::IndexCastOp::create(rewriter, loc, rewriter.getI64Type(), t);
    auto masked = [&](Value next, Value otherwise) -> Value {
      if (!op.getLengths())
        return next;
      auto type = cast<RankedTensorType>(next.getType());
      unsigned rank = type.getRank();
      MLIRContext *ctx = getContext();
      AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
      AffineMap bMap = AffineMap::get(rank, 0, getAffineDimExpr(0, ctx));
      SmallVector<Value> ins{next, op.getLengths()};
      SmallVector<AffineMap> maps{id, bMap};
      if (otherwise) {
        ins.push_back(otherwise);
        maps.push_back(id);
      }
      maps.push_back(id);
      Value init =
          emptyTensor(rewriter, loc, type, sizesOf(rewriter, loc, next));
      auto g = linalg::GenericOp::create(
          rewriter, loc, type, ins, ValueRange{init}, maps, parallel(rank),
          [&](OpBuilder &b, Location l, ValueRange args) {
            Value len = args[1];
            if (!len.getType().isInteger(64))
              len = arith::ExtSIOp::create(b, l, b.getI64Type(), len);
            Value active = arith::CmpIOp::create(
                b, l, arith::CmpIPredicate::slt, tI64, len);
            Value other =
                otherwise
                    ? args[2]
                    : arith::ConstantOp::create(b, l, b.getF32FloatAttr(0))
                          .getResult();
            Value sel = arith::SelectOp::create(b, l, active, args[0], other);
            linalg::YieldOp::create(b, l, sel);
          });
      return g.getResult(0);
    };

    SmallVector<Value> nextIter;
    for (unsigned k = 0; k < numStates; ++k)
      nextIter.push_back(masked(yield.getValues()[numOutputs + k],
                                forOp.getRegionIterArgs()[k]));
    for (unsigned k = 0; k < numOutputs; ++k) {
      Value out = masked(yield.getValues()[k], Value());
      Value acc = forOp.getRegionIterArgs()[numStates + k];
      SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, out);
      sizes.insert(sizes.begin(), rewriter.getIndexAttr(1));
      SmallVector<OpFoldResult> offsets(sizes.size(), rewriter.getIndexAttr(0));
      offsets[0] = t;
      SmallVector<OpFoldResult> strides(sizes.size(), rewriter.getIndexAttr(1));
      nextIter.push_back(tensor::InsertSliceOp::create(
          rewriter, loc, out, acc, offsets, sizes, strides));
    }
    scf::YieldOp::create(rewriter, loc, nextIter);
    rewriter.eraseOp(yield);

    SmallVector<Value> results;
    for (unsigned k = 0; k < numOutputs; ++k)
      results.push_back(forOp.getResult(numStates + k));
    for (unsigned k = 0; k < numStates; ++k)
      results.push_back(forOp.getResult(k));
    rewriter.replaceOp(op, results);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Ops of gradient functions
//===----------------------------------------------------------------------===//

struct LowerZerosLike : OpRewritePattern<ZerosLikeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ZerosLikeOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op,
        zeroFilled(rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()),
                   sizesOf(rewriter, op.getLoc(), op.getInput())));
    return success();
  }
};

struct LowerSlice : OpRewritePattern<SliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SliceOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> sizes =
        sizesOf(rewriter, op.getLoc(), op.getInput());
    sizes.back() = rewriter.getIndexAttr(type.getShape().back());
    SmallVector<OpFoldResult> offsets(sizes.size(), rewriter.getIndexAttr(0));
    offsets.back() = rewriter.getIndexAttr(op.getOffset());
    SmallVector<OpFoldResult> strides(sizes.size(), rewriter.getIndexAttr(1));
    rewriter.replaceOpWithNewOp<tensor::ExtractSliceOp>(
        op, type, op.getInput(), offsets, sizes, strides);
    return success();
  }
};

/// result = f(a[...], b[...]) elementwise over same-shaped a and b.
Value zipElements(OpBuilder &b, Location loc, Value x, Value y,
                  function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
  auto type = cast<RankedTensorType>(x.getType());
  unsigned rank = type.getRank();
  Value init = emptyTensor(b, loc, type, sizesOf(b, loc, x));
  auto id = AffineMap::getMultiDimIdentityMap(rank, b.getContext());
  auto generic = linalg::GenericOp::create(
      b, loc, type, ValueRange{x, y}, ValueRange{init},
      SmallVector<AffineMap>{id, id, id}, parallel(rank),
      [&](OpBuilder &bb, Location l, ValueRange args) {
        linalg::YieldOp::create(bb, l, f(bb, l, args[0], args[1]));
      });
  return generic.getResult(0);
}

struct LowerReluGradOp : OpRewritePattern<ReluGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReluGradOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op,
        zipElements(rewriter, op.getLoc(), op.getOutputGrad(), op.getInput(),
                    [](OpBuilder &b, Location l, Value dy, Value x) -> Value {
                      Value zero =
                          arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
                      Value pos = arith::CmpFOp::create(
                          b, l, arith::CmpFPredicate::OGT, x, zero);
                      return arith::SelectOp::create(b, l, pos, dy, zero);
                    }));
    return success();
  }
};

struct LowerScaleRows : OpRewritePattern<ScaleRowsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ScaleRowsOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = type.getRank();
    MLIRContext *ctx = getContext();
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    AffineMap row = AffineMap::get(rank, 0, getAffineDimExpr(0, ctx));
    Value init =
        emptyTensor(rewriter, loc, type, sizesOf(rewriter, loc, op.getInput()));
    auto g = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{op.getInput(), op.getFactors()},
        ValueRange{init}, SmallVector<AffineMap>{id, row, id}, parallel(rank),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value m = arith::MulFOp::create(b, l, args[0], args[1]);
          linalg::YieldOp::create(b, l, m);
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

struct LowerLengthMask : OpRewritePattern<LengthMaskOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LengthMaskOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> seq = sizesOf(rewriter, loc, op.getSequence());
    Value init = emptyTensor(rewriter, loc, type, {seq[0], seq[1]});
    MLIRContext *ctx = getContext();
    AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
    AffineMap b1 = AffineMap::get(2, 0, getAffineDimExpr(1, ctx));
    auto g = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{op.getLengths()}, ValueRange{init},
        SmallVector<AffineMap>{b1, id}, parallel(2),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value t = linalg::IndexOp::create(b, l, 0);
          Value len = args[0];
          if (!len.getType().isInteger(64))
            len = arith::ExtSIOp::create(b, l, b.getI64Type(), len);
          Value ti = arith::IndexCastOp::create(b, l, b.getI64Type(), t);
          Value active =
              arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, ti, len);
          Value r = arith::UIToFPOp::create(b, l, b.getF32Type(), active);
          linalg::YieldOp::create(b, l, r);
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

struct LowerReduceSum : OpRewritePattern<ReduceSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReduceSumOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = inType.getRank(), keep = type.getRank();
    SmallVector<OpFoldResult> sizes = sizesOf(rewriter, loc, op.getInput());
    SmallVector<OpFoldResult> outSizes(sizes.end() - keep, sizes.end());
    Value init = zeroFilled(rewriter, loc, type, outSizes);
    MLIRContext *ctx = getContext();
    SmallVector<AffineExpr> trailing;
    for (unsigned d = rank - keep; d < rank; ++d)
      trailing.push_back(getAffineDimExpr(d, ctx));
    SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx),
                                AffineMap::get(rank, 0, trailing, ctx)};
    auto iters = parallel(rank);
    for (unsigned d = 0; d < rank - keep; ++d)
      iters[d] = utils::IteratorType::reduction;
    auto g = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{op.getInput()}, ValueRange{init}, maps,
        iters, [&](OpBuilder &b, Location l, ValueRange args) {
          Value s = arith::AddFOp::create(b, l, args[1], args[0]);
          linalg::YieldOp::create(b, l, s);
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

/// dW[o, i] = Σ_n dy[n, o] x[n, i], loops (n..., o, i): the innermost loop
/// is contiguous in x and in the result.
struct LowerLinearWeightGrad : OpRewritePattern<LinearWeightGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearWeightGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned lead =
        cast<RankedTensorType>(op.getInput().getType()).getRank() - 1;
    MLIRContext *ctx = getContext();
    SmallVector<AffineExpr> dyMap = leadingDims(lead, ctx), xMap = dyMap;
    AffineExpr o = getAffineDimExpr(lead, ctx),
               i = getAffineDimExpr(lead + 1, ctx);
    dyMap.push_back(o);
    xMap.push_back(i);
    unsigned n = lead + 2;
    SmallVector<AffineMap> maps{AffineMap::get(n, 0, dyMap, ctx),
                                AffineMap::get(n, 0, xMap, ctx),
                                AffineMap::get(n, 0, {o, i}, ctx)};
    auto iters = parallel(n);
    for (unsigned d = 0; d < lead; ++d)
      iters[d] = utils::IteratorType::reduction;
    Value init = zeroFilled(rewriter, loc, type, {});
    rewriter.replaceOp(op, multiplyAccumulate(rewriter, loc, type,
                                              op.getOutputGrad(), op.getInput(),
                                              init, maps, iters));
    return success();
  }
};

/// Collapses all leading dimensions of `v` into one (keeping the last when
/// `keepLast`): [T, B, E] -> [T·B, E], [T, B] -> [T·B].
Value collapseLeading(OpBuilder &b, Location loc, Value v, bool keepLast) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rank = type.getRank();
  int64_t lead = keepLast ? rank - 1 : rank;
  if (lead == 1)
    return v;
  ReassociationIndices first;
  for (int64_t d = 0; d < lead; ++d)
    first.push_back(d);
  SmallVector<ReassociationIndices> groups{first};
  if (keepLast)
    groups.push_back({rank - 1});
  return tensor::CollapseShapeOp::create(b, loc, v, groups);
}

/// Scatter-adds rows of dy into the table, one position at a time.
struct LowerEmbeddingGrad : OpRewritePattern<EmbeddingGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    if (cast<RankedTensorType>(op.getIds().getType()).getRank() == 0)
      return rewriter.notifyMatchFailure(op, "needs at least one id dimension");
    Value ids = collapseLeading(rewriter, loc, op.getIds(), false);
    Value dy = collapseLeading(rewriter, loc, op.getOutputGrad(), true);
    Value table = zeroFilled(rewriter, loc, type, {});
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value n = tensor::DimOp::create(rewriter, loc, ids, c0);
    int64_t E = type.getDimSize(1);
    auto rowType = RankedTensorType::get({E}, type.getElementType());
    auto loop = scf::ForOp::create(
        rewriter, loc, c0, n, c1, ValueRange{table},
        [&](OpBuilder &b, Location l, Value pos, ValueRange iter) {
          Value id = tensor::ExtractOp::create(b, l, ids, ValueRange{pos});
          Value row = arith::IndexCastOp::create(b, l, b.getIndexType(), id);
          SmallVector<OpFoldResult> one{b.getIndexAttr(1), b.getIndexAttr(E)};
          SmallVector<OpFoldResult> strides{b.getIndexAttr(1),
                                            b.getIndexAttr(1)};
          Value acc = tensor::ExtractSliceOp::create(
              b, l, rowType, iter[0],
              SmallVector<OpFoldResult>{row, b.getIndexAttr(0)}, one, strides);
          Value g = tensor::ExtractSliceOp::create(
              b, l, rowType, dy,
              SmallVector<OpFoldResult>{pos, b.getIndexAttr(0)}, one, strides);
          Value sum = zipElements(
              b, l, acc, g,
              [](OpBuilder &bb, Location ll, Value x, Value y) -> Value {
                return arith::AddFOp::create(bb, ll, x, y);
              });
          Value updated = tensor::InsertSliceOp::create(
              b, l, sum, iter[0],
              SmallVector<OpFoldResult>{row, b.getIndexAttr(0)}, one, strides);
          scf::YieldOp::create(b, l, updated);
        });
    rewriter.replaceOp(op, loop.getResult(0));
    return success();
  }
};

/// Per row of [N, C] logits: max, Σ exp(x - max), whether the target
/// counts, and (for the loss) -log p(target).
struct CrossEntropyRows {
  Value logits, targets, max, sum;
};

CrossEntropyRows crossEntropyRows(OpBuilder &b, Location loc, Value logits,
                                  Value targets) {
  CrossEntropyRows r;
  r.logits = collapseLeading(b, loc, logits, true);
  r.targets = collapseLeading(b, loc, targets, false);
  r.max =
      reduceRows(b, loc, r.logits, Value(), -INFINITY, identityArg,
                 [](OpBuilder &bb, Location l, Value acc, Value v) -> Value {
                   return arith::MaximumFOp::create(bb, l, acc, v);
                 });
  r.sum = reduceRows(
      b, loc, r.logits, r.max, 0.0f,
      [](OpBuilder &bb, Location l, Value v, Value m) -> Value {
        return math::ExpOp::create(bb, l, arith::SubFOp::create(bb, l, v, m));
      },
      addF);
  return r;
}

/// A rank-0 sum over rows of `f(row index, target)`.
Value sumOverRows(OpBuilder &b, Location loc, Value targets,
                  function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
  auto scalar = RankedTensorType::get({}, b.getF32Type());
  Value init = zeroFilled(b, loc, scalar, {});
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(1, ctx),
                              AffineMap::get(1, 0, {}, ctx)};
  auto g = linalg::GenericOp::create(
      b, loc, scalar, ValueRange{targets}, ValueRange{init}, maps,
      SmallVector<utils::IteratorType>{utils::IteratorType::reduction},
      [&](OpBuilder &bb, Location l, ValueRange args) {
        Value n = linalg::IndexOp::create(bb, l, 0);
        Value v = f(bb, l, n, args[0]);
        Value s = arith::AddFOp::create(bb, l, args[1], v);
        linalg::YieldOp::create(bb, l, s);
      });
  return g.getResult(0);
}

Value targetCounts(OpBuilder &b, Location l, Value t, int64_t ignore) {
  Value ig =
      arith::ConstantOp::create(b, l, b.getIntegerAttr(t.getType(), ignore));
  Value counts = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ne, t, ig);
  return counts;
}

struct LowerCrossEntropy : OpRewritePattern<CrossEntropyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CrossEntropyOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    if (cast<RankedTensorType>(op.getLogits().getType()).getRank() < 2)
      return rewriter.notifyMatchFailure(op, "needs [..., N, C] logits");
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    CrossEntropyRows r =
        crossEntropyRows(rewriter, loc, op.getLogits(), op.getTargets());
    Value total = sumOverRows(
        rewriter, loc, r.targets,
        [&](OpBuilder &b, Location l, Value n, Value t) -> Value {
          Value counts = targetCounts(b, l, t, ignore);
          // An ignored target may lie outside [0, C): read class 0 instead.
          Value zero =
              arith::ConstantOp::create(b, l, b.getIntegerAttr(t.getType(), 0));
          Value safe = arith::SelectOp::create(b, l, counts, t, zero);
          Value c = arith::IndexCastOp::create(b, l, b.getIndexType(), safe);
          Value x = tensor::ExtractOp::create(b, l, r.logits, ValueRange{n, c});
          Value m = tensor::ExtractOp::create(b, l, r.max, ValueRange{n});
          Value s = tensor::ExtractOp::create(b, l, r.sum, ValueRange{n});
          // -log p = max + log Σ - x
          Value nll = arith::SubFOp::create(
              b, l,
              arith::AddFOp::create(b, l, m, math::LogOp::create(b, l, s)), x);
          Value f0 = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
          return arith::SelectOp::create(b, l, counts, nll, f0);
        });
    Value count =
        sumOverRows(rewriter, loc, r.targets,
                    [&](OpBuilder &b, Location l, Value, Value t) -> Value {
                      return arith::UIToFPOp::create(
                          b, l, b.getF32Type(), targetCounts(b, l, t, ignore));
                    });
    auto scalar = RankedTensorType::get({}, rewriter.getF32Type());
    Value init = emptyTensor(rewriter, loc, scalar, {});
    AffineMap none = AffineMap::get(0, 0, {}, getContext());
    auto g = linalg::GenericOp::create(
        rewriter, loc, scalar, ValueRange{total, count}, ValueRange{init},
        SmallVector<AffineMap>{none, none, none},
        SmallVector<utils::IteratorType>{},
        [&](OpBuilder &b, Location l, ValueRange args) {
          linalg::YieldOp::create(
              b, l, arith::DivFOp::create(b, l, args[0], args[1]).getResult());
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

/// Works on the logits' own shape (no reshape of the result): per-row max
/// and Σ exp are reductions over the last dimension.
struct LowerCrossEntropyGrad : OpRewritePattern<CrossEntropyGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CrossEntropyGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = type.getRank();
    if (rank < 2)
      return rewriter.notifyMatchFailure(op, "needs [..., N, C] logits");
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    Value logits = op.getLogits(), targets = op.getTargets();
    Value max =
        reduceRows(rewriter, loc, logits, Value(), -INFINITY, identityArg,
                   [](OpBuilder &bb, Location l, Value acc, Value v) -> Value {
                     return arith::MaximumFOp::create(bb, l, acc, v);
                   });
    Value sum = reduceRows(
        rewriter, loc, logits, max, 0.0f,
        [](OpBuilder &bb, Location l, Value v, Value m) -> Value {
          return math::ExpOp::create(bb, l, arith::SubFOp::create(bb, l, v, m));
        },
        addF);
    Value count = sumOverRows(
        rewriter, loc, collapseLeading(rewriter, loc, targets, false),
        [&](OpBuilder &b, Location l, Value, Value t) -> Value {
          return arith::UIToFPOp::create(b, l, b.getF32Type(),
                                         targetCounts(b, l, t, ignore));
        });
    Value countScalar = tensor::ExtractOp::create(rewriter, loc, count);
    Value dScalar = tensor::ExtractOp::create(rewriter, loc, op.getDloss());
    Value scale = arith::DivFOp::create(rewriter, loc, dScalar, countScalar);
    MLIRContext *ctx = getContext();
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    SmallVector<AffineExpr> lead;
    for (unsigned d = 0; d + 1 < rank; ++d)
      lead.push_back(getAffineDimExpr(d, ctx));
    AffineMap row = AffineMap::get(rank, 0, lead, ctx);
    Value init =
        emptyTensor(rewriter, loc, type, sizesOf(rewriter, loc, logits));
    auto g = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{logits, targets, max, sum},
        ValueRange{init}, SmallVector<AffineMap>{id, row, row, row, id},
        parallel(rank), [&](OpBuilder &b, Location l, ValueRange a) {
          Value p = arith::DivFOp::create(
              b, l,
              math::ExpOp::create(b, l,
                                  arith::SubFOp::create(b, l, a[0], a[2])),
              a[3]);
          Value c = linalg::IndexOp::create(b, l, rank - 1);
          Value ci = arith::IndexCastOp::create(b, l, a[1].getType(), c);
          Value hit =
              arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, ci, a[1]);
          Value one = arith::UIToFPOp::create(b, l, b.getF32Type(), hit);
          Value v = arith::MulFOp::create(
              b, l, arith::SubFOp::create(b, l, p, one), scale);
          Value f0 = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
          Value counts = targetCounts(b, l, a[1], ignore);
          Value sel = arith::SelectOp::create(b, l, counts, v, f0);
          linalg::YieldOp::create(b, l, sel);
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

/// The number of elements of `v`, as an f32 scalar.
Value numelF32(OpBuilder &b, Location loc, Value v) {
  Value n = arith::ConstantIndexOp::create(b, loc, 1);
  for (OpFoldResult s : sizesOf(b, loc, v))
    n = arith::MulIOp::create(b, loc, n,
                              getValueOrCreateConstantIndexOp(b, loc, s));
  Value i = arith::IndexCastOp::create(b, loc, b.getI64Type(), n);
  return arith::SIToFPOp::create(b, loc, b.getF32Type(), i);
}

struct LowerRowSum : OpRewritePattern<RowSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RowSumOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value rows = reduceRows(rewriter, loc, op.getInput(), Value(), 0.0f,
                            identityArg, addF);
    rewriter.replaceOp(op,
                       mapWithRows(rewriter, loc, op.getInput(),
                                   ValueRange{rows}, ValueRange{},
                                   [](OpBuilder &, Location,
                                      ValueRange a) -> Value { return a[1]; }));
    return success();
  }
};

struct LowerMean : OpRewritePattern<MeanOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MeanOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    unsigned rank = inType.getRank();
    auto scalar = cast<RankedTensorType>(op.getType());
    Value init = zeroFilled(rewriter, loc, scalar, {});
    MLIRContext *ctx = getContext();
    SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx),
                                AffineMap::get(rank, 0, {}, ctx)};
    SmallVector<utils::IteratorType> iters(rank,
                                           utils::IteratorType::reduction);
    Value sum = linalg::GenericOp::create(
                    rewriter, loc, scalar, ValueRange{op.getInput()},
                    ValueRange{init}, maps, iters,
                    [&](OpBuilder &b, Location l, ValueRange a) {
                      Value s = arith::AddFOp::create(b, l, a[1], a[0]);
                      linalg::YieldOp::create(b, l, s);
                    })
                    .getResult(0);
    Value n = numelF32(rewriter, loc, op.getInput());
    Value total = tensor::ExtractOp::create(rewriter, loc, sum);
    Value mean = arith::DivFOp::create(rewriter, loc, total, n);
    rewriter.replaceOpWithNewOp<tensor::FromElementsOp>(op, scalar,
                                                        ValueRange{mean});
    return success();
  }
};

struct LowerMeanGrad : OpRewritePattern<MeanGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MeanGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value n = numelF32(rewriter, loc, op.getInput());
    Value d = tensor::ExtractOp::create(rewriter, loc, op.getDloss());
    Value v = arith::DivFOp::create(rewriter, loc, d, n);
    Value empty =
        emptyTensor(rewriter, loc, cast<RankedTensorType>(op.getType()),
                    sizesOf(rewriter, loc, op.getInput()));
    rewriter.replaceOp(
        op, linalg::FillOp::create(rewriter, loc, v, empty).getResult(0));
    return success();
  }
};

struct LowerNll : OpRewritePattern<NllOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NllOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    if (cast<RankedTensorType>(op.getLogp().getType()).getRank() < 2)
      return rewriter.notifyMatchFailure(op, "needs [..., N, C] scores");
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    Value logp = collapseLeading(rewriter, loc, op.getLogp(), true);
    Value targets = collapseLeading(rewriter, loc, op.getTargets(), false);
    Value total = sumOverRows(
        rewriter, loc, targets,
        [&](OpBuilder &b, Location l, Value n, Value t) -> Value {
          Value counts = targetCounts(b, l, t, ignore);
          Value zero =
              arith::ConstantOp::create(b, l, b.getIntegerAttr(t.getType(), 0));
          Value safe = arith::SelectOp::create(b, l, counts, t, zero);
          Value c = arith::IndexCastOp::create(b, l, b.getIndexType(), safe);
          Value x = tensor::ExtractOp::create(b, l, logp, ValueRange{n, c});
          Value f0 = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
          Value neg = arith::NegFOp::create(b, l, x);
          return arith::SelectOp::create(b, l, counts, neg, f0);
        });
    Value count =
        sumOverRows(rewriter, loc, targets,
                    [&](OpBuilder &b, Location l, Value, Value t) -> Value {
                      return arith::UIToFPOp::create(
                          b, l, b.getF32Type(), targetCounts(b, l, t, ignore));
                    });
    Value a = tensor::ExtractOp::create(rewriter, loc, total);
    Value c = tensor::ExtractOp::create(rewriter, loc, count);
    Value mean = arith::DivFOp::create(rewriter, loc, a, c);
    rewriter.replaceOpWithNewOp<tensor::FromElementsOp>(op, op.getType(),
                                                        ValueRange{mean});
    return success();
  }
};

struct LowerNllGrad : OpRewritePattern<NllGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NllGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = type.getRank();
    if (rank < 2)
      return rewriter.notifyMatchFailure(op, "needs [..., N, C] scores");
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    Value count = sumOverRows(
        rewriter, loc, collapseLeading(rewriter, loc, op.getTargets(), false),
        [&](OpBuilder &b, Location l, Value, Value t) -> Value {
          return arith::UIToFPOp::create(b, l, b.getF32Type(),
                                         targetCounts(b, l, t, ignore));
        });
    Value c = tensor::ExtractOp::create(rewriter, loc, count);
    Value d = tensor::ExtractOp::create(rewriter, loc, op.getDloss());
    Value scale = arith::NegFOp::create(
        rewriter, loc, arith::DivFOp::create(rewriter, loc, d, c));
    MLIRContext *ctx = getContext();
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    SmallVector<AffineExpr> lead;
    for (unsigned k = 0; k + 1 < rank; ++k)
      lead.push_back(getAffineDimExpr(k, ctx));
    AffineMap row = AffineMap::get(rank, 0, lead, ctx);
    Value init =
        emptyTensor(rewriter, loc, type, sizesOf(rewriter, loc, op.getLogp()));
    auto g = linalg::GenericOp::create(
        rewriter, loc, type, ValueRange{op.getTargets()}, ValueRange{init},
        SmallVector<AffineMap>{row, id}, parallel(rank),
        [&](OpBuilder &b, Location l, ValueRange a) {
          Value k = linalg::IndexOp::create(b, l, rank - 1);
          Value ki = arith::IndexCastOp::create(b, l, a[0].getType(), k);
          Value hit =
              arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, ki, a[0]);
          Value counts = targetCounts(b, l, a[0], ignore);
          Value both = arith::AndIOp::create(b, l, hit, counts);
          Value f0 = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
          Value sel = arith::SelectOp::create(b, l, both, scale, f0);
          linalg::YieldOp::create(b, l, sel);
        });
    rewriter.replaceOp(op, g.getResult(0));
    return success();
  }
};

struct ConvertLoomToLinalg
    : public loom::impl::ConvertLoomToLinalgBase<ConvertLoomToLinalg> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<
        LowerLinear, LowerBinary<AddOp, arith::AddFOp>,
        LowerBinary<SubOp, arith::SubFOp>, LowerBinary<MulOp, arith::MulFOp>,
        LowerBinary<DivOp, arith::DivFOp>,
        LowerBinary<MinimumOp, arith::MinimumFOp>, LowerUnary<SigmoidOp>,
        LowerUnary<SqrtOp>, LowerUnary<AbsOp>, LowerUnary<SignOp>,
        LowerUnary<TanhOp>, LowerUnary<ReluOp>, LowerUnary<ExpOp>,
        LowerUnary<NegOp>, LowerUnary<RsqrtOp>, LowerDropout, LowerZeros,
        LowerSplit, LowerConcat, LowerStack, LowerIndex, LowerTranspose,
        LowerEmbedding, LowerSoftmax, LowerLogSoftmax, LowerLayerNorm,
        LowerScan, LowerZerosLike, LowerSlice, LowerReluGradOp, LowerScaleRows,
        LowerLengthMask, LowerReduceSum, LowerLinearWeightGrad,
        LowerEmbeddingGrad, LowerCrossEntropy, LowerCrossEntropyGrad,
        LowerRowSum, LowerMean, LowerMeanGrad, LowerNll, LowerNllGrad>(ctx);
    GreedyRewriteConfig config;
    config.setMaxIterations(GreedyRewriteConfig::kNoLimit);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
    WalkResult r = getOperation().walk([&](Operation *op) {
      if (isa<LoomDialect>(op->getDialect())) {
        op->emitError("could not lower '") << op->getName() << "'";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
