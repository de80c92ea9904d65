//===- LowerToLoops.cpp - math and copies as plain loops --------------===//
//
// Small lowering steps that keep compiled models free of calls into libm
// or MLIR runtime libraries, and one around an upstream bug.
//
//===----------------------------------------------------------------------===//
#include "codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace loom {
#define GEN_PASS_DEF_LOOMEXPANDMATH
#define GEN_PASS_DEF_LOOMCOPIESTOLOOPS
#define GEN_PASS_DEF_LOOMEXPANDSHAPETOCAST
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {
struct ExpandMath : public loom::impl::LoomExpandMathBase<ExpandMath> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == math::TanhOp::getOperationName() ||
             name == math::ExpOp::getOperationName() ||
             name == math::LogOp::getOperationName();
    });
    // f32 <-> bf16 (bf16 weight storage) as integer arithmetic: LLVM would
    // call __truncsfbf2, which a JIT-compiled module cannot link.
    arith::populateExpandBFloat16Patterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

struct CopyToLinalg : OpRewritePattern<memref::CopyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::CopyOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<linalg::CopyOp>(op, op.getSource(),
                                                op.getTarget());
    return success();
  }
};

struct CopiesToLoops : public loom::impl::LoomCopiesToLoopsBase<CopiesToLoops> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<CopyToLinalg>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
/// %e = memref.expand_shape %src [...] output_shape [...] as a
/// reinterpret_cast of %src's base buffer: within each group, the innermost
/// expanded dimension keeps the source dimension's stride and each outer
/// one multiplies it by the sizes inside it.
struct ExpandShapeToCast : OpRewritePattern<memref::ExpandShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::ExpandShapeOp op,
                                PatternRewriter &rewriter) const override {
    MemRefType resultType = op.getResultType();
    SmallVector<int64_t> typeStrides;
    int64_t typeOffset;
    if (failed(resultType.getStridesAndOffset(typeStrides, typeOffset)))
      return failure();
    Location loc = op.getLoc();
    auto meta =
        memref::ExtractStridedMetadataOp::create(rewriter, loc, op.getSrc());
    SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();
    SmallVector<OpFoldResult> strides(resultType.getRank());
    for (auto [srcDim, group] : llvm::enumerate(op.getReassociationIndices())) {
      Value stride = meta.getStrides()[srcDim];
      for (int64_t d : llvm::reverse(group)) {
        strides[d] = stride;
        Value size = getValueOrCreateConstantIndexOp(rewriter, loc, sizes[d]);
        stride = arith::MulIOp::create(rewriter, loc, stride, size);
      }
    }
    // Where the result type's layout is static, the cast must say so.
    for (auto [k, s] : llvm::enumerate(typeStrides))
      if (!ShapedType::isDynamic(s))
        strides[k] = rewriter.getIndexAttr(s);
    OpFoldResult offset = ShapedType::isDynamic(typeOffset)
                              ? OpFoldResult(meta.getOffset())
                              : OpFoldResult(rewriter.getIndexAttr(typeOffset));
    for (OpFoldResult &s : sizes)
      if (auto v = getConstantIntValue(s))
        s = rewriter.getIndexAttr(*v);
    rewriter.replaceOpWithNewOp<memref::ReinterpretCastOp>(
        op, resultType, meta.getBaseBuffer(), offset, sizes, strides);
    return success();
  }
};

struct ExpandShapeToCastPass
    : public loom::impl::LoomExpandShapeToCastBase<ExpandShapeToCastPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandShapeToCast>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
