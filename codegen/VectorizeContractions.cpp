//===- VectorizeContractions.cpp - register-blocked matmul kernels ----===//
//
// Rewrites the multiply-accumulate linalg.generic ops that loom's matmuls
// lower to (C[..., m, n] += Σ_k A[...] · B[..., k, n], after bufferization)
// into a register-blocked kernel: an MR × (NV·W) tile of C is held in
// vector registers while every reduction index streams one row chunk of B
// (contiguous in n) and broadcasts one element of A per row, giving MR·NV
// FMAs per MR + NV loads. Columns past N are masked; rows past the last
// full MR block use a one-row kernel. The reduction loops run innermost in
// their original order, so every element is summed in the same order as by
// the plain loops (results are unchanged, FMAs aside).
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/StringMap.h"

namespace loom {
#define GEN_PASS_DEF_LOOMVECTORIZECONTRACTIONS
#define GEN_PASS_DEF_LOOMOUTLINECONTRACTIONS
#define GEN_PASS_DEF_LOOMPACKWEIGHTS
#define GEN_PASS_DEF_LOOMCOLLAPSECONTRACTIONDIMS
#define GEN_PASS_DEF_LOOMFUSEMATMULEPILOGUES
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// The roles of a matched contraction's loop dimensions and operands.
struct Contraction {
  linalg::GenericOp op;
  unsigned a = 0, b = 0;            // input operand numbers of A and B
  unsigned m = 0, n = 0;            // loop dims of C's last two results
  SmallVector<unsigned> outer;      // other parallel dims (outermost loops)
  SmallVector<unsigned> reductions; // in loop order
  // B packed by loom-pack-weights: B[n / group, k, n % group] (0: B is
  // indexed by plain dims, its last one n).
  int64_t group = 0;
  // The packed B is stored as bf16 and widened in the body (loom-pack-
  // weights{bf16}).
  bool bf16 = false;
};

/// Columns per panel of a weight packed by loom-pack-weights: a multiple of
/// every target's vector width (4, 8 or 16 f32 lanes), the same on every
/// target so that the linalg phase does not depend on it.
constexpr int64_t kPackGroup = 16;

/// (n floordiv G, k, n mod G) — a B operand packed by loom-pack-weights —
/// as (n, k, G).
std::optional<std::tuple<unsigned, unsigned, int64_t>>
packedMap(AffineMap map) {
  if (map.getNumResults() != 3)
    return std::nullopt;
  auto div = dyn_cast<AffineBinaryOpExpr>(map.getResult(0));
  auto mod = dyn_cast<AffineBinaryOpExpr>(map.getResult(2));
  auto k = dyn_cast<AffineDimExpr>(map.getResult(1));
  if (!div || !mod || !k || div.getKind() != AffineExprKind::FloorDiv ||
      mod.getKind() != AffineExprKind::Mod)
    return std::nullopt;
  auto n1 = dyn_cast<AffineDimExpr>(div.getLHS());
  auto n2 = dyn_cast<AffineDimExpr>(mod.getLHS());
  auto g1 = dyn_cast<AffineConstantExpr>(div.getRHS());
  auto g2 = dyn_cast<AffineConstantExpr>(mod.getRHS());
  if (!n1 || !n2 || !g1 || !g2 || n1 != n2 || g1 != g2 || g1.getValue() <= 0)
    return std::nullopt;
  return std::make_tuple(n1.getPosition(), k.getPosition(), g1.getValue());
}

bool hasUnitInnerStride(Value v) {
  auto t = dyn_cast<MemRefType>(v.getType());
  if (!t || t.getRank() == 0)
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(t.getStridesAndOffset(strides, offset)))
    return false;
  return strides.back() == 1;
}

/// Matches C += A · B with B's and C's last dimension the same parallel loop
/// dimension n (contiguous), C of rank ≥ 2, and A not indexed by n; or with
/// B packed by loom-pack-weights. On memrefs (`buffers`), B and C must also
/// have a unit innermost stride.
std::optional<Contraction> match(linalg::GenericOp op, bool buffers = true) {
  if ((buffers ? !op.hasPureBufferSemantics() : !op.hasPureTensorSemantics()) ||
      op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1)
    return std::nullopt;
  // Body: yield (acc + x·y) in any operand order; one input may be bf16,
  // widened to f32 first (a weight packed as bf16).
  Block &body = op.getRegion().front();
  Value x = body.getArgument(0), y = body.getArgument(1);
  Operation *first = &body.front();
  int wideInput = -1;
  if (auto ext = dyn_cast<arith::ExtFOp>(first)) {
    auto arg = dyn_cast<BlockArgument>(ext.getIn());
    if (!arg || arg.getOwner() != &body || arg.getArgNumber() > 1 ||
        !arg.getType().isBF16() || !ext.getType().isF32())
      return std::nullopt;
    wideInput = arg.getArgNumber();
    (wideInput == 0 ? x : y) = ext.getResult();
    first = first->getNextNode();
  }
  if (body.getOperations().size() != (wideInput >= 0 ? 4u : 3u))
    return std::nullopt;
  auto mul = dyn_cast<arith::MulFOp>(first);
  auto add =
      dyn_cast_if_present<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  if (!mul || !add || !x.getType().isF32() || !y.getType().isF32() ||
      !body.getArgument(2).getType().isF32())
    return std::nullopt;
  Value acc = body.getArgument(2);
  if (!((add.getLhs() == acc && add.getRhs() == mul) ||
        (add.getRhs() == acc && add.getLhs() == mul)))
    return std::nullopt;
  if (!((mul.getLhs() == x && mul.getRhs() == y) ||
        (mul.getLhs() == y && mul.getRhs() == x)))
    return std::nullopt;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1 || yield.getOperand(0) != add.getResult())
    return std::nullopt;

  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  int packedInput = -1;
  for (auto [i, map] : llvm::enumerate(maps))
    if (!map.isProjectedPermutation(/*allowZeroInResults=*/false)) {
      if (i == 2 || packedInput >= 0 || !packedMap(map))
        return std::nullopt;
      packedInput = i;
    }
  AffineMap cMap = maps[2];
  if (cMap.getNumResults() < 2)
    return std::nullopt;
  Contraction c;
  c.op = op;
  c.n = cMap.getDimPosition(cMap.getNumResults() - 1);
  c.m = cMap.getDimPosition(cMap.getNumResults() - 2);
  auto iters = op.getIteratorTypesArray();
  for (unsigned d = 0; d < iters.size(); ++d) {
    bool inC = cMap.getResultPosition(getAffineDimExpr(d, op.getContext()))
                   .has_value();
    if (iters[d] == utils::IteratorType::reduction) {
      if (inC)
        return std::nullopt;
      c.reductions.push_back(d);
    } else if (!inC) {
      return std::nullopt;
    } else if (d != c.m && d != c.n) {
      c.outer.push_back(d);
    }
  }
  if (c.reductions.empty())
    return std::nullopt;
  auto lastIs = [&](AffineMap map, unsigned d) {
    return map.getNumResults() > 0 &&
           map.getDimPosition(map.getNumResults() - 1) == d;
  };
  auto uses = [&](AffineMap map, unsigned d) {
    return map.getResultPosition(getAffineDimExpr(d, op.getContext()))
        .has_value();
  };
  if (packedInput >= 0) {
    auto [n, k, group] = *packedMap(maps[packedInput]);
    c.b = packedInput;
    c.a = 1 - packedInput;
    c.group = group;
    c.bf16 = wideInput == int(c.b);
    if (n != c.n || c.reductions.size() != 1 || k != c.reductions[0] ||
        uses(maps[c.a], c.n))
      return std::nullopt;
  } else {
    for (unsigned bIdx : {1u, 0u}) {
      unsigned aIdx = 1 - bIdx;
      if (lastIs(maps[bIdx], c.n) && !uses(maps[aIdx], c.n) &&
          !uses(maps[bIdx], c.m)) {
        c.a = aIdx;
        c.b = bIdx;
        break;
      }
      if (bIdx == 0)
        return std::nullopt;
    }
  }
  if (wideInput >= 0 && !c.bf16)
    return std::nullopt; // only a packed B is stored narrow
  if (buffers && (!hasUnitInnerStride(op.getDpsInputOperand(c.b)->get()) ||
                  !hasUnitInnerStride(op.getDpsInitOperand(0)->get())))
    return std::nullopt;
  return c;
}

/// The buffer a view is of (through subviews, casts and reshapes).
Value rootOf(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
    v = view.getViewSource();
  return v;
}

/// Whether `op` is one scalar operation that also applies lane by lane to
/// vectors (arith and math elementwise ops, constants) on f32 or integers.
bool vectorizableScalarOp(Operation &op) {
  auto scalar = [](Type t) {
    return t.isF32() ||
           (t.isSignlessInteger() && t.getIntOrFloatBitWidth() <= 64);
  };
  if (!llvm::all_of(op.getOperandTypes(), scalar) ||
      !llvm::all_of(op.getResultTypes(), scalar) || op.getNumRegions() != 0)
    return false;
  if (isa<arith::ConstantOp>(op))
    return true;
  return OpTrait::hasElementwiseMappableTraits(&op) &&
         isa<arith::ArithDialect, math::MathDialect>(op.getDialect());
}

/// A matmul's epilogue after bufferization (loom-fuse-matmul-epilogues'
/// `loom.epilogue` op), with what the fused kernel needs to know.
struct Epilogue {
  linalg::GenericOp op;
  linalg::FillOp fill; // C's zero initialization right before the matmul
  OpFoldResult rows;   // rows of the gate slices
  int64_t units = 0;   // columns of each gate slice
  // Epilogue input number → the column of C where its gate slice starts.
  SmallVector<std::pair<unsigned, int64_t>> gates;
};

/// The values `e`'s region uses from above, if they are all scalars (the
/// step's constants, its time index): the kernel broadcasts them.
std::optional<llvm::SetVector<Value>> scalarsAbove(linalg::GenericOp e) {
  llvm::SetVector<Value> above;
  getUsedValuesDefinedAbove(e.getRegion(), above);
  for (Value v : above)
    if (!v.getType().isIntOrFloat())
      return std::nullopt;
  return above;
}

/// Matches, after bufferization, the epilogue of contraction `c` that may
/// run on the kernel's accumulators: the next op that writes memory is a
/// 2-D elementwise `loom.epilogue` generic reading C only through column
/// slices of its first rows, C has no other use, and the epilogue's outputs
/// are fresh buffers that no operand of either op shares.
/// In a kernel function (`inKernel`), C is one of its arguments.
std::optional<Epilogue> matchEpilogue(const Contraction &c,
                                      bool inKernel = false) {
  linalg::GenericOp m = c.op;
  if (!c.outer.empty() || c.reductions.size() != 1)
    return std::nullopt;
  Value C = m.getDpsInitOperand(0)->get();
  if (!C.getDefiningOp<memref::AllocOp>() &&
      !(inKernel && isa<BlockArgument>(C)))
    return std::nullopt;
  Epilogue epi;
  // The op after the matmul (allocations and pure ops aside).
  Operation *next = m->getNextNode();
  while (next && (isa<memref::AllocOp>(next) || isMemoryEffectFree(next)))
    next = next->getNextNode();
  auto e = dyn_cast_or_null<linalg::GenericOp>(next);
  if (!e || !e->hasAttr(loom::kEpilogueAttr) || !e.hasPureBufferSemantics() ||
      e.getNumLoops() != 2 || e.getNumReductionLoops() != 0 ||
      !scalarsAbove(e) ||
      !llvm::all_of(e.getRegion().front().without_terminator(),
                    vectorizableScalarOp))
    return std::nullopt;
  epi.op = e;
  for (Operation *prev = m->getPrevNode(); prev; prev = prev->getPrevNode()) {
    if (auto fill = dyn_cast<linalg::FillOp>(prev)) {
      if (fill.getDpsInitOperand(0)->get() == C &&
          matchPattern(fill.getDpsInputOperand(0)->get(), m_AnyZeroFloat()))
        epi.fill = fill;
      break;
    }
    if (!isa<memref::AllocOp>(prev) && !isMemoryEffectFree(prev))
      break;
  }
  // C: the fill, the matmul, the epilogue's slices and its deallocation.
  for (Operation *user : C.getUsers()) {
    if (user == m || user == e || user == epi.fill.getOperation() ||
        isa<memref::DeallocOp>(user))
      continue;
    auto view = dyn_cast<memref::SubViewOp>(user);
    if (!view ||
        !llvm::all_of(view->getUsers(), [&](Operation *u) { return u == e; }))
      return std::nullopt;
  }
  llvm::SmallPtrSet<Value, 8> roots{rootOf(C)};
  for (Value v : m.getDpsInputs())
    roots.insert(rootOf(v));
  for (OpOperand *in : e.getDpsInputOperands()) {
    Value v = in->get();
    AffineMap map = e.getMatchingIndexingMap(in);
    auto type = dyn_cast<MemRefType>(v.getType());
    if (!type || !(type.getElementType().isF32() ||
                   type.getElementType().isSignlessInteger(64) ||
                   type.getElementType().isSignlessInteger(32)))
      return std::nullopt;
    if (v == C) {
      // All of C (before the matmul, an allocation): one gate.
      auto cType = cast<MemRefType>(C.getType());
      auto alloc = C.getDefiningOp<memref::AllocOp>();
      if (!map.isIdentity() || !alloc || cType.isDynamicDim(1) ||
          !epi.gates.empty())
        return std::nullopt;
      epi.units = cType.getDimSize(1);
      epi.rows =
          cType.isDynamicDim(0)
              ? OpFoldResult(alloc.getDynamicSizes()[0])
              : OpFoldResult(IntegerAttr::get(IndexType::get(C.getContext()),
                                              cType.getDimSize(0)));
      epi.gates.push_back({in->getOperandNumber(), 0});
      continue;
    }
    auto view = v.getDefiningOp<memref::SubViewOp>();
    if (view && view.getSource() == C) {
      // A gate: C[0 : rows, o : o + units].
      auto offsets = view.getStaticOffsets();
      auto sizes = view.getMixedSizes();
      std::optional<int64_t> units = getConstantIntValue(sizes[1]);
      if (!map.isIdentity() || offsets.size() != 2 || offsets[0] != 0 ||
          ShapedType::isDynamic(offsets[1]) || !view.hasUnitStride() ||
          !units || (epi.units && epi.units != *units) ||
          (!epi.gates.empty() && epi.rows != sizes[0]))
        return std::nullopt;
      epi.units = *units;
      epi.rows = sizes[0];
      epi.gates.push_back({in->getOperandNumber(), offsets[1]});
      continue;
    }
    if (rootOf(v) == rootOf(C) || !map.isProjectedPermutation())
      return std::nullopt;
    // Read lane by lane along the units (d1, innermost and contiguous) or
    // broadcast.
    bool usesUnits =
        map.getResultPosition(getAffineDimExpr(1, e.getContext())).has_value();
    if (usesUnits && (map.getDimPosition(map.getNumResults() - 1) != 1 ||
                      !hasUnitInnerStride(v)))
      return std::nullopt;
    roots.insert(rootOf(v));
  }
  if (epi.gates.empty())
    return std::nullopt;
  for (OpOperand &out : e.getDpsInitsMutable()) {
    Value v = out.get();
    Value root = rootOf(v);
    auto type = dyn_cast<MemRefType>(v.getType());
    bool fresh = root.getDefiningOp<memref::AllocOp>() ||
                 (isa<BlockArgument>(root) &&
                  isa<func::FuncOp>(
                      cast<BlockArgument>(root).getOwner()->getParentOp()));
    if (!type || !type.getElementType().isF32() ||
        !e.getMatchingIndexingMap(&out).isIdentity() ||
        !hasUnitInnerStride(v) || !fresh || !roots.insert(root).second)
      return std::nullopt;
  }
  return epi;
}

/// The innermost reduction loop is already register-blocked: LLVM must
/// neither unroll nor interleave it. Left alone, it unrolls the 1-row
/// (GEMV) tile by 4, whose eight B streams then need more address
/// registers than x86 has, and the spills cost C1 (batch 1) 10-15%.
/// (convert-scf-to-cf carries the annotation to the loop's latch.)
LLVM::LoopAnnotationAttr innermostAnnotation(OpBuilder &b) {
  MLIRContext *ctx = b.getContext();
  auto yes = BoolAttr::get(ctx, true);
  auto vectorize = LLVM::LoopVectorizeAttr::get(ctx, /*disable=*/yes, {}, {},
                                                {}, {}, {}, {});
  auto interleave = LLVM::LoopInterleaveAttr::get(ctx, b.getI32IntegerAttr(1));
  auto unroll =
      LLVM::LoopUnrollAttr::get(ctx, /*disable=*/yes, {}, {}, {}, {}, {}, {});
  return LLVM::LoopAnnotationAttr::get(ctx, {}, vectorize, interleave, unroll,
                                       {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
                                       {});
}

class KernelBuilder {
public:
  KernelBuilder(OpBuilder &b, Location loc, const Contraction &c, int64_t width,
                int64_t vectors, int64_t rows)
      : b(b), loc(loc), c(c), width(width), vectors(vectors), rows(rows) {
    op = c.op;
    maps = op.getIndexingMapsArray();
    A = op.getDpsInputOperand(c.a)->get();
    B = op.getDpsInputOperand(c.b)->get();
    C = op.getDpsInitOperand(0)->get();
    vecType = VectorType::get({width}, b.getF32Type());
    maskType = VectorType::get({width}, b.getI1Type());
  }

  void build() {
    // Loop bounds of every dimension.
    SmallVector<Range, 4> ranges =
        cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(b, loc);
    for (Range &r : ranges)
      sizes.push_back(getValueOrCreateConstantIndexOp(b, loc, r.size));
    ivs.assign(sizes.size(), Value());
    zero = arith::ConstantIndexOp::create(b, loc, 0);
    one = arith::ConstantIndexOp::create(b, loc, 1);
    // Column panels outermost, so that a panel of B stays in cache while
    // every row (of every outer index) uses it; with a single reduction
    // dimension, also blocks of `kBlock` reduction indices, so that the
    // panel's block fits in L2. Sums keep their order: a tile's
    // accumulators are stored and reloaded between blocks, exactly.
    //
    // Outermost, a loop over blocks of `vectors` columns (one tile wide)
    // marked parallel: loom-outline-parallel-loops hands each thread one
    // contiguous range of blocks, [nLo, nHi), which it runs as one kernel.
    int64_t grain = width * vectors;
    Value N = sizes[c.n];
    Value blocksOfN = arith::CeilDivUIOp::create(b, loc, N, cst(grain));
    auto par = scf::ForOp::create(b, loc, zero, blocksOfN, one);
    par->setAttr(loom::kParallelAttr, b.getStringAttr("range"));
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(par.getBody());
    Value j = par.getInductionVar();
    Value nLo = arith::MulIOp::create(b, loc, j, cst(grain));
    auto jEnd = arith::AddIOp::create(b, loc, j, one);
    jEnd->setAttr(loom::kParallelEndAttr, b.getUnitAttr());
    nHi = arith::MinUIOp::create(
        b, loc, arith::MulIOp::create(b, loc, jEnd, cst(grain)), N);
    // With enough rows to reuse it, each (panel, reduction block) of B is
    // first copied into a contiguous buffer, vector by vector (B's rows are
    // often a power of two apart, so that a block read in place conflicts
    // in the caches and the TLB); with few rows (a GEMV), B is read once,
    // in place.
    Value packBuf;
    Value usePack;
    if (packable()) {
      Value rowsTotal = sizes[c.m];
      for (unsigned d : c.outer)
        rowsTotal = arith::MulIOp::create(b, loc, rowsTotal, sizes[d]);
      usePack = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                      rowsTotal, cst(kPackMinRows));
      Value count =
          arith::SelectOp::create(b, loc, usePack, cst(panelVectors), one);
      auto bufType = MemRefType::get(
          {ShapedType::kDynamic, kBlock + kPackPad, width}, b.getF32Type());
      packBuf = memref::AllocOp::create(b, loc, bufType, ValueRange{count},
                                        b.getI64IntegerAttr(64));
    }
    int64_t panel = width * panelVectors;
    auto panels = scf::ForOp::create(b, loc, nLo, nHi, cst(panel));
    {
      OpBuilder::InsertionGuard g2(b);
      b.setInsertionPointToStart(panels.getBody());
      p0 = panels.getInductionVar();
      if (c.reductions.size() == 1) {
        unsigned d = c.reductions[0];
        auto blocks = scf::ForOp::create(b, loc, zero, sizes[d], cst(kBlock));
        b.setInsertionPointToStart(blocks.getBody());
        kLo = blocks.getInductionVar();
        kHi = arith::MinUIOp::create(
            b, loc, arith::AddIOp::create(b, loc, kLo, cst(kBlock)), sizes[d]);
      }
      if (packBuf) {
        auto ifPack = scf::IfOp::create(b, loc, usePack, /*withElse=*/true);
        b.setInsertionPointToStart(ifPack.thenBlock());
        pack(packBuf);
        packed = packBuf;
        buildOuter(0);
        packed = Value();
        b.setInsertionPointToStart(ifPack.elseBlock());
      }
      buildOuter(0);
    }
    if (packBuf)
      memref::DeallocOp::create(b, loc, packBuf);
  }

private:
  OpBuilder &b;
  Location loc;
  const Contraction &c;
  int64_t width, vectors, rows;
  int64_t panelVectors = 16; // a column panel: 16 vectors (256 columns)
  int64_t curVectors = 0;    // of the tile being built
  int64_t kBlock = 256;      // reduction indices per block
  Value p0, kLo, kHi;        // current panel start, reduction block
  Value nHi;                 // end of this kernel's columns
  linalg::GenericOp op;
  SmallVector<Value> masks; // of the current tile's column vectors
  Value passThru;
  SmallVector<AffineMap> maps;
  Value A, B, C, zero, one;
  VectorType vecType, maskType;
  SmallVector<Value> sizes, ivs;

  // B packing: rows needed to pay for the copy, and padding of the packed
  // vectors' stride (kBlock + kPackPad rows of `width` floats, not a power
  // of two).
  static constexpr int64_t kPackMinRows = 16;
  static constexpr int64_t kPackPad = 2;
  Value packed; // the packed block of B, while building its kernels

  Value cst(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

  /// B can be packed per (panel, reduction block) when it is a plain
  /// [k, n] matrix: a single reduction, no outer (batch) index.
  bool packable() {
    AffineMap bMap = maps[c.b];
    return !c.group && c.reductions.size() == 1 && bMap.getNumResults() == 2 &&
           bMap.getDimPosition(0) == c.reductions[0];
  }

  /// Copies B[kLo:kHi, p0:p0+panel) (clipped to the kernel's columns, the
  /// rest zero: a partial tile's masked-off lanes compute on zeros, never on
  /// uninitialized memory) into `buf`: vector v of row k at
  /// buf[v, k - kLo, :].
  void pack(Value buf) {
    OpBuilder::InsertionGuard g(b);
    Value panelEnd = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, p0, cst(panelVectors * width)),
        nHi);
    auto ks = scf::ForOp::create(b, loc, kLo, kHi, one);
    b.setInsertionPointToStart(ks.getBody());
    Value k = ks.getInductionVar();
    Value kRel = arith::SubIOp::create(b, loc, k, kLo);
    auto vs = scf::ForOp::create(b, loc, zero, cst(panelVectors), one);
    b.setInsertionPointToStart(vs.getBody());
    Value v = vs.getInductionVar();
    Value col = arith::AddIOp::create(
        b, loc, p0, arith::MulIOp::create(b, loc, v, cst(width)));
    Value left = arith::SubIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, panelEnd, col), col);
    Value mask =
        vector::CreateMaskOp::create(b, loc, maskType, ValueRange{left});
    Value zeros = arith::ConstantOp::create(
        b, loc, vecType, DenseElementsAttr::get(vecType, 0.0f));
    ivs[c.reductions[0]] = k;
    ivs[c.n] = col;
    Value row = vector::MaskedLoadOp::create(b, loc, vecType, B,
                                             indices(maps[c.b]), mask, zeros);
    vector::StoreOp::create(b, loc, row, buf, ValueRange{v, kRel, zero});
  }

  /// An operand's indices from the current loop ivs.
  SmallVector<Value> indices(AffineMap map) {
    SmallVector<Value> idx;
    for (unsigned r = 0; r < map.getNumResults(); ++r)
      idx.push_back(ivs[map.getDimPosition(r)]);
    return idx;
  }

  void buildOuter(unsigned k) {
    if (k == c.outer.size())
      return buildTiles();
    unsigned d = c.outer[k];
    auto loop = scf::ForOp::create(b, loc, zero, sizes[d], one);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(loop.getBody());
    ivs[d] = loop.getInductionVar();
    buildOuter(k + 1);
  }

  /// Within a column panel: blocks of `rows` rows, then the remaining rows
  /// in blocks of 4, 2 and 1 with wider tiles (as many accumulators, more
  /// independent FMA chains).
  void buildTiles() {
    Value M = sizes[c.m];
    Value lo = zero;
    struct Kernel {
      int64_t mr, nv;
    };
    SmallVector<Kernel> kernels{{rows, vectors}};
    for (int64_t mr : {4, 2, 1})
      if (mr < rows)
        kernels.push_back(
            {mr, std::min<int64_t>(panelVectors, rows * vectors / mr)});
    for (Kernel k : kernels) {
      // Each kernel's tile width must divide the panel.
      int64_t nv = k.nv;
      while (panelVectors % nv)
        --nv;
      Value count = arith::DivUIOp::create(
          b, loc, arith::SubIOp::create(b, loc, M, lo), cst(k.mr));
      Value hi = arith::AddIOp::create(
          b, loc, lo, arith::MulIOp::create(b, loc, count, cst(k.mr)));
      rowLoop(lo, hi, p0, k.mr, nv);
      lo = hi;
    }
  }

  void rowLoop(Value lo, Value hi, Value p0, int64_t mr, int64_t nv) {
    auto loop = scf::ForOp::create(b, loc, lo, hi, cst(mr));
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(loop.getBody());
    Value m0 = loop.getInductionVar();
    // The panel's tiles, up to the kernel's end (a loop, not unrolled: one
    // copy of the tile's code keeps compile time down, and a tile's
    // reduction loop dwarfs the loop's overhead).
    Value panelEnd = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, p0, cst(panelVectors * width)),
        nHi);
    // Full tiles load and store whole vectors; only a last, partial tile
    // uses masks (masked loads are slow on some CPUs, and their mask
    // registers would push the accumulators out of the register file).
    Value step = cst(nv * width);
    Value full = arith::MulIOp::create(
        b, loc,
        arith::DivUIOp::create(
            b, loc, arith::SubIOp::create(b, loc, panelEnd, p0), step),
        step);
    Value fullEnd = arith::AddIOp::create(b, loc, p0, full);
    auto tiles = scf::ForOp::create(b, loc, p0, fullEnd, step);
    {
      OpBuilder::InsertionGuard g2(b);
      b.setInsertionPointToStart(tiles.getBody());
      tile(m0, tiles.getInductionVar(), mr, nv, /*masked=*/false);
    }
    Value partial = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          fullEnd, panelEnd);
    auto edge = scf::IfOp::create(b, loc, partial, /*withElseRegion=*/false);
    b.setInsertionPointToStart(edge.thenBlock());
    tile(m0, fullEnd, mr, nv, /*masked=*/true);
  }

  /// One MR × NR tile at (m0, n0); `masked` for a tile that may reach past
  /// the kernel's last column.
  void tile(Value m0, Value n0, int64_t mr, int64_t nv, bool masked) {
    curVectors = nv;
    Value N = nHi;
    SmallVector<Value> colStarts;
    masks.clear();
    for (int64_t j = 0; j < curVectors; ++j) {
      Value start = arith::AddIOp::create(b, loc, n0, cst(j * width));
      if (masked) {
        Value left = arith::SubIOp::create(
            b, loc, arith::MaxSIOp::create(b, loc, N, start), start);
        masks.push_back(
            vector::CreateMaskOp::create(b, loc, maskType, ValueRange{left}));
      }
      colStarts.push_back(start);
    }
    passThru = arith::ConstantOp::create(b, loc, vecType,
                                         DenseElementsAttr::get(vecType, 0.0f));
    auto cIndices = [&](Value row, Value col) {
      ivs[c.m] = row;
      ivs[c.n] = col;
      return indices(maps[2]);
    };
    SmallVector<Value> accs;
    SmallVector<Value> rowIdx;
    for (int64_t i = 0; i < mr; ++i)
      rowIdx.push_back(i ? arith::AddIOp::create(b, loc, m0, cst(i)).getResult()
                         : m0);
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < curVectors; ++j)
        accs.push_back(load(C, cIndices(rowIdx[i], colStarts[j]), j));
    // The reduction loops, innermost, carrying the accumulators.
    accs = reduce(0, accs, rowIdx, colStarts);
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < curVectors; ++j)
        store(accs[i * curVectors + j], C, cIndices(rowIdx[i], colStarts[j]),
              j);
  }

  /// Vector j of the tile's columns, masked in a partial tile.
  Value load(Value mem, ValueRange idx, int64_t j) {
    if (masks.empty())
      return vector::LoadOp::create(b, loc, vecType, mem, idx);
    return vector::MaskedLoadOp::create(b, loc, vecType, mem, idx, masks[j],
                                        passThru);
  }
  /// A vector of a bf16 B, widened to f32 (exact: bf16 is f32's top half).
  Value loadWidened(Value mem, ValueRange idx) {
    auto narrow = VectorType::get({width}, b.getBF16Type());
    Value v = vector::LoadOp::create(b, loc, narrow, mem, idx);
    return arith::ExtFOp::create(b, loc, vecType, v);
  }
  void store(Value v, Value mem, ValueRange idx, int64_t j) {
    if (masks.empty())
      vector::StoreOp::create(b, loc, v, mem, idx);
    else
      vector::MaskedStoreOp::create(b, loc, mem, idx, masks[j], v);
  }

  SmallVector<Value> reduce(unsigned k, ValueRange accs, ArrayRef<Value> rowIdx,
                            ArrayRef<Value> colStarts) {
    if (k == c.reductions.size())
      return step(accs, rowIdx, colStarts);
    unsigned d = c.reductions[k];
    auto loop = kLo ? scf::ForOp::create(b, loc, kLo, kHi, one, accs)
                    : scf::ForOp::create(b, loc, zero, sizes[d], one, accs);
    if (k + 1 == c.reductions.size())
      loop->setAttr("loop_annotation", innermostAnnotation(b));
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(loop.getBody());
      ivs[d] = loop.getInductionVar();
      SmallVector<Value> next =
          reduce(k + 1, loop.getRegionIterArgs(), rowIdx, colStarts);
      scf::YieldOp::create(b, loc, next);
    }
    return SmallVector<Value>(loop.getResults());
  }

  /// One reduction index: NV row chunks of B, one broadcast of A per row.
  SmallVector<Value> step(ValueRange accs, ArrayRef<Value> rowIdx,
                          ArrayRef<Value> colStarts) {
    SmallVector<Value> bs;
    if (packed) {
      // The packed block is zero past the last column: no masks.
      Value kRel = arith::SubIOp::create(b, loc, ivs[c.reductions[0]], kLo);
      Value v0 = arith::DivUIOp::create(
          b, loc, arith::SubIOp::create(b, loc, colStarts[0], p0), cst(width));
      for (int64_t j = 0; j < curVectors; ++j) {
        Value v =
            j ? arith::AddIOp::create(b, loc, v0, cst(j)).getResult() : v0;
        bs.push_back(vector::LoadOp::create(b, loc, vecType, packed,
                                            ValueRange{v, kRel, zero}));
      }
    }
    for (auto [j, start] : llvm::enumerate(colStarts)) {
      if (packed)
        break;
      if (c.group) {
        // Packed at load time: vector j at B[start / G, k, start % G] (a
        // tile's vectors never straddle groups: G is a multiple of the
        // width). Past the last group, a partial tile's mask is all false.
        Value g = cst(c.group);
        Value group = arith::DivUIOp::create(b, loc, start, g);
        if (c.bf16 && !masks.empty()) {
          // A bf16 B is read unmasked (masked 16-bit loads would be
          // scalarized through f32): inside the packed groups the padding
          // is zero, and a vector past the last group reads the last one
          // instead, for lanes whose sums the tile never stores.
          Value last = arith::SubIOp::create(
              b, loc, memref::DimOp::create(b, loc, B, 0), one);
          group = arith::MinUIOp::create(b, loc, group, last);
        }
        Value idx[] = {group, ivs[c.reductions[0]],
                       arith::RemUIOp::create(b, loc, start, g)};
        bs.push_back(c.bf16 ? loadWidened(B, idx) : load(B, idx, j));
        continue;
      }
      ivs[c.n] = start;
      bs.push_back(load(B, indices(maps[c.b]), j));
    }
    SmallVector<Value> out;
    for (auto [i, row] : llvm::enumerate(rowIdx)) {
      ivs[c.m] = row;
      Value a = memref::LoadOp::create(b, loc, A, indices(maps[c.a]));
      Value splat = vector::BroadcastOp::create(b, loc, vecType, a);
      for (int64_t j = 0; j < curVectors; ++j)
        out.push_back(vector::FMAOp::create(b, loc, splat, bs[j],
                                            accs[i * curVectors + j]));
    }
    return out;
  }
};

/// The kernel of a matmul fused with its epilogue: per tile of rows and
/// units, the accumulators of every gate's columns, then the epilogue on
/// them in registers; C is never stored (see loom-fuse-matmul-epilogues).
class EpilogueKernelBuilder {
public:
  EpilogueKernelBuilder(OpBuilder &b, Location loc, const Contraction &c,
                        const Epilogue &epi, int64_t width, int64_t accs)
      : b(b), loc(loc), c(c), epi(epi), width(width) {
    linalg::GenericOp op = c.op;
    maps = op.getIndexingMapsArray();
    A = op.getDpsInputOperand(c.a)->get();
    B = op.getDpsInputOperand(c.b)->get();
    C = op.getDpsInitOperand(0)->get();
    vecType = VectorType::get({width}, b.getF32Type());
    gates = epi.gates.size();
    vectorsPerGate = epi.units / width;
    // A tile is one row × `rowVectors` vectors per gate: as many
    // accumulators as the matmul kernel's tile (independent FMA chains),
    // each B vector used once. It divides the block of units a thread
    // takes at a time.
    rowVectors =
        largestDivisor(vectorsPerGate, std::clamp<int64_t>(accs / gates, 1, 8));
  }

  /// Whether the target's vectors fit the gates: whole vectors of units
  /// in each gate, never straddling a packed panel.
  static bool fits(const Contraction &c, const Epilogue &epi, int64_t width) {
    if (epi.units % width || (c.group && c.group % width))
      return false;
    return llvm::all_of(epi.gates,
                        [&](auto g) { return g.second % width == 0; });
  }

  void build() {
    Value zero = cst(0), one = cst(1);
    Value rows = getValueOrCreateConstantIndexOp(b, loc, epi.rows);
    ivs.assign(maps[0].getNumDims(), Value());
    unsigned kd = c.reductions[0];
    Value K = memref::DimOp::create(
        b, loc, A,
        *maps[c.a].getResultPosition(getAffineDimExpr(kd, b.getContext())));
    // Blocks of `rowVectors` vectors of units, marked parallel: a thread
    // takes a contiguous range of blocks, every gate of its units.
    int64_t blocks = vectorsPerGate / rowVectors;
    auto par = scf::ForOp::create(b, loc, zero, cst(blocks), one);
    par->setAttr(loom::kParallelAttr, b.getStringAttr("range"));
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(par.getBody());
    Value j = par.getInductionVar();
    auto jEnd = arith::AddIOp::create(b, loc, j, one);
    jEnd->setAttr(loom::kParallelEndAttr, b.getUnitAttr());
    vLo = arith::MulIOp::create(b, loc, j, cst(rowVectors));
    vHi = arith::MulIOp::create(b, loc, jEnd, cst(rowVectors));
    this->rows = rows;
    // One pass over the reduction: the sums stay in registers from the
    // first index to the epilogue. (Blocks of 64 or 128 indices, with
    // partial sums through C, measured no better at one row and did not
    // rescue several.)
    tiles(zero, K);
  }

private:
  OpBuilder &b;
  Location loc;
  Contraction c;
  Epilogue epi;
  int64_t width;
  int64_t gates = 0, vectorsPerGate = 0;
  int64_t rowVectors = 1;
  SmallVector<AffineMap> maps;
  Value A, B, C;
  Value vLo, vHi, rows;
  VectorType vecType;
  SmallVector<Value> ivs;

  static int64_t largestDivisor(int64_t n, int64_t atMost) {
    for (int64_t d = std::min(n, atMost); d > 1; --d)
      if (n % d == 0)
        return d;
    return 1;
  }

  Value cst(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

  SmallVector<Value> indices(AffineMap map, ArrayRef<Value> dims) {
    SmallVector<Value> idx;
    for (unsigned r = 0; r < map.getNumResults(); ++r)
      idx.push_back(dims[map.getDimPosition(r)]);
    return idx;
  }

  /// Every tile of this thread's units for reduction indices [kLo, kHi).
  void tiles(Value kLo, Value kHi) {
    OpBuilder::InsertionGuard g(b);
    auto rowsLoop = scf::ForOp::create(b, loc, cst(0), rows, cst(1));
    b.setInsertionPointToStart(rowsLoop.getBody());
    auto vecs = scf::ForOp::create(b, loc, vLo, vHi, cst(rowVectors));
    b.setInsertionPointToStart(vecs.getBody());
    tile(rowsLoop.getInductionVar(), 1, vecs.getInductionVar(), rowVectors, kLo,
         kHi);
  }

  /// Column of C of gate `g`'s vector `v0 + v`.
  Value column(int64_t g, Value v0, int64_t v) {
    Value unit = arith::MulIOp::create(
        b, loc, arith::AddIOp::create(b, loc, v0, cst(v)), cst(width));
    return arith::AddIOp::create(b, loc, unit, cst(epi.gates[g].second));
  }

  /// One tile: rows m0..m0+mr, vectors v0..v0+nv of every gate, reduction
  /// indices [kLo, kHi), then the epilogue on the sums.
  void tile(Value m0, int64_t mr, Value v0, int64_t nv, Value kLo, Value kHi) {
    SmallVector<Value> rowIdx, cols;
    for (int64_t r = 0; r < mr; ++r)
      rowIdx.push_back(r ? arith::AddIOp::create(b, loc, m0, cst(r)).getResult()
                         : m0);
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t v = 0; v < nv; ++v)
        cols.push_back(column(g, v0, v));
    // Accumulators [row][gate][vector].
    auto cIndices = [&](int64_t r, Value col) {
      ivs[c.m] = rowIdx[r];
      ivs[c.n] = col;
      return indices(maps[2], ivs);
    };
    // C's zero fill is folded in: the sums start from zeros.
    Value zeros = arith::ConstantOp::create(
        b, loc, vecType, DenseElementsAttr::get(vecType, 0.0f));
    SmallVector<Value> accs;
    for (int64_t r = 0; r < mr; ++r)
      for (Value col : cols)
        accs.push_back(epi.fill ? zeros
                                : vector::LoadOp::create(b, loc, vecType, C,
                                                         cIndices(r, col))
                                      .getResult());
    unsigned kd = c.reductions[0];
    auto loop = scf::ForOp::create(b, loc, kLo, kHi, cst(1), accs);
    loop->setAttr("loop_annotation", innermostAnnotation(b));
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(loop.getBody());
      ivs[kd] = loop.getInductionVar();
      SmallVector<Value> bs;
      for (Value col : cols) {
        if (c.group) {
          Value gsz = cst(c.group);
          Value idx[] = {arith::DivUIOp::create(b, loc, col, gsz), ivs[kd],
                         arith::RemUIOp::create(b, loc, col, gsz)};
          if (c.bf16) {
            auto narrow = VectorType::get({width}, b.getBF16Type());
            Value v = vector::LoadOp::create(b, loc, narrow, B, idx);
            bs.push_back(arith::ExtFOp::create(b, loc, vecType, v));
          } else {
            bs.push_back(vector::LoadOp::create(b, loc, vecType, B, idx));
          }
          continue;
        }
        ivs[c.n] = col;
        bs.push_back(vector::LoadOp::create(b, loc, vecType, B,
                                            indices(maps[c.b], ivs)));
      }
      SmallVector<Value> next;
      ValueRange in = loop.getRegionIterArgs();
      for (int64_t r = 0; r < mr; ++r) {
        ivs[c.m] = rowIdx[r];
        Value a = memref::LoadOp::create(b, loc, A, indices(maps[c.a], ivs));
        Value splat = vector::BroadcastOp::create(b, loc, vecType, a);
        for (auto [i, bv] : llvm::enumerate(bs))
          next.push_back(
              vector::FMAOp::create(b, loc, splat, bv, in[r * bs.size() + i]));
      }
      scf::YieldOp::create(b, loc, next);
    }
    // The epilogue, one row and one vector of units at a time.
    for (int64_t r = 0; r < mr; ++r)
      for (int64_t v = 0; v < nv; ++v) {
        SmallVector<Value> gateValues;
        for (int64_t g = 0; g < gates; ++g)
          gateValues.push_back(loop.getResult(r * gates * nv + g * nv + v));
        Value unit = arith::MulIOp::create(
            b, loc, arith::AddIOp::create(b, loc, v0, cst(v)), cst(width));
        apply(rowIdx[r], unit, gateValues);
      }
  }

  /// The epilogue's body on vectors at (row, units unit..unit+width).
  void apply(Value row, Value unit, ArrayRef<Value> gateValues) {
    linalg::GenericOp e = epi.op;
    Block &body = e.getRegion().front();
    IRMapping map;
    Value dims[] = {row, unit};
    auto splat = [&](Value s) {
      return vector::BroadcastOp::create(
                 b, loc, VectorType::get({width}, s.getType()), s)
          .getResult();
    };
    llvm::SetVector<Value> above;
    getUsedValuesDefinedAbove(e.getRegion(), above);
    for (Value v : above)
      map.map(v, splat(v));
    for (OpOperand *in : e.getDpsInputOperands()) {
      BlockArgument arg = body.getArgument(in->getOperandNumber());
      auto gate = llvm::find_if(
          epi.gates, [&](auto g) { return g.first == in->getOperandNumber(); });
      if (gate != epi.gates.end()) {
        map.map(arg, gateValues[gate - epi.gates.begin()]);
        continue;
      }
      AffineMap m = e.getMatchingIndexingMap(in);
      SmallVector<Value> idx = indices(m, dims);
      bool lanes =
          m.getNumResults() > 0 && m.getDimPosition(m.getNumResults() - 1) == 1;
      auto type = VectorType::get(
          {width}, cast<MemRefType>(in->get().getType()).getElementType());
      map.map(
          arg,
          lanes
              ? vector::LoadOp::create(b, loc, type, in->get(), idx).getResult()
              : splat(memref::LoadOp::create(b, loc, in->get(), idx)));
    }
    for (Operation &op : body.without_terminator()) {
      if (isa<arith::ConstantOp>(op)) {
        map.map(op.getResult(0), splat(b.clone(op)->getResult(0)));
        continue;
      }
      Operation *v = b.clone(op, map);
      for (OpResult r : v->getResults())
        r.setType(VectorType::get({width}, r.getType()));
    }
    auto yield = cast<linalg::YieldOp>(body.getTerminator());
    for (auto [value, out] : llvm::zip(yield.getOperands(), e.getDpsInits()))
      vector::StoreOp::create(b, loc, map.lookup(value), out,
                              ValueRange{row, unit});
  }
};

struct VectorizeContractions
    : public loom::impl::LoomVectorizeContractionsBase<VectorizeContractions> {
  using LoomVectorizeContractionsBase::LoomVectorizeContractionsBase;

  /// Rows up to which a matmul with an epilogue runs fused. With more, the
  /// matmul kernel's panels and 6-row tiles reuse B better than fused tiles
  /// of a few rows × every gate can (on AVX2 they must also fit 16
  /// registers): measured 1.2-1.8x slower from 2 to 64 rows, and at one row
  /// about 5% faster (docs/rationale.md).
  static constexpr int64_t kFusedMaxRows = 1;

  /// In a kernel made by loom-outline-contractions: C's fill, the matmul,
  /// C's gate slices and the epilogue, in this order.
  static std::optional<Epilogue> kernelEpilogue(const Contraction &c) {
    auto f = c.op->getParentOfType<func::FuncOp>();
    if (!f || !f->hasAttr(loom::kKernelAttr))
      return std::nullopt;
    std::optional<Epilogue> epi = matchEpilogue(c, /*inKernel=*/true);
    return epi;
  }

  void runOnOperation() override {
    SmallVector<Contraction> found;
    getOperation().walk([&](linalg::GenericOp op) {
      if (auto c = match(op))
        found.push_back(*c);
    });
    for (Contraction &c : found) {
      if (c.group % vectorWidth)
        continue; // packed panels narrower than a vector: plain loops
      if (std::optional<Epilogue> epi = kernelEpilogue(c)) {
        if (EpilogueKernelBuilder::fits(c, *epi, vectorWidth)) {
          epi->op->emitRemark()
              << "epilogue fused into the matmul: its " << epi->gates.size()
              << " gate slice(s) of " << epi->units << " units stay in vector<"
              << int64_t(vectorWidth)
              << "xf32> registers, never stored, for up to " << kFusedMaxRows
              << " rows; more rows run the matmul kernel, then the epilogue "
                 "(loom-vectorize-contractions)";
          Location loc = c.op.getLoc();
          OpBuilder b(epi->op); // after the constants the epilogue uses
          Value rowCount = getValueOrCreateConstantIndexOp(b, loc, epi->rows);
          Value few = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::ule, rowCount,
              arith::ConstantIndexOp::create(b, loc, kFusedMaxRows));
          auto branch = scf::IfOp::create(b, loc, few, /*withElse=*/true);
          b.setInsertionPointToStart(branch.thenBlock());
          EpilogueKernelBuilder(b, loc, c, *epi, vectorWidth,
                                int64_t(vectors) * int64_t(rows))
              .build();
          b.setInsertionPointToStart(branch.elseBlock());
          if (epi->fill)
            b.clone(*epi->fill);
          KernelBuilder(b, loc, c, vectorWidth, vectors, rows).build();
          b.clone(*epi->op)->removeAttr(loom::kEpilogueAttr);
          epi->op.erase();
          if (epi->fill)
            epi->fill.erase();
          c.op.erase();
          continue;
        }
        epi->op->emitRemark()
            << "epilogue not fused: " << epi->units
            << " units per gate (or a gate's first column) is not a multiple "
               "of the "
            << int64_t(vectorWidth)
            << "-lane vector (loom-vectorize-contractions)";
      }
      c.op->emitRemark() << "matmul as a register-blocked kernel: "
                         << int64_t(rows) << "x"
                         << int64_t(vectors) * int64_t(vectorWidth)
                         << " tiles of vector<" << int64_t(vectorWidth)
                         << "xf32> accumulators (loom-vectorize-contractions)";
      OpBuilder b(c.op);
      KernelBuilder(b, c.op.getLoc(), c, vectorWidth, vectors, rows).build();
      c.op.erase();
    }
  }
};

/// Folds runs of consecutive same-kind loop dimensions of tensor
/// contractions (see Passes.td).
struct CollapseContractionDims
    : public loom::impl::LoomCollapseContractionDimsBase<
          CollapseContractionDims> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> found;
    getOperation().walk([&](linalg::GenericOp op) {
      if (match(op, /*buffers=*/false))
        found.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : found) {
      SmallVector<AffineMap> maps = op.getIndexingMapsArray();
      auto iters = op.getIteratorTypesArray();
      SmallVector<ReassociationIndices> folded;
      for (int64_t d = 0, e = iters.size(); d < e;) {
        ReassociationIndices run{d};
        while (run.back() + 1 < e && iters[run.back() + 1] == iters[d]) {
          ReassociationIndices next = run;
          next.push_back(run.back() + 1);
          if (!linalg::areDimSequencesPreserved(maps, {next}))
            break;
          run = std::move(next);
        }
        d = run.back() + 1;
        if (run.size() > 1)
          folded.push_back(std::move(run));
      }
      if (folded.empty())
        continue;
      rewriter.setInsertionPoint(op);
      Location loc = op.getLoc();
      auto collapsed = linalg::collapseOpIterationDims(
          cast<linalg::LinalgOp>(op.getOperation()), folded, rewriter);
      if (failed(collapsed))
        continue;
      emitRemark(loc) << "matmul dimensions folded: " << iters.size()
                      << " loops become "
                      << collapsed->collapsedOp.getNumLoops()
                      << " (loom-collapse-contraction-dims)";
      rewriter.replaceOp(op, collapsed->results);
    }
  }
};

/// Packs the parameter-derived B operands of tensor contractions into
/// kPackGroup-column panels (see Passes.td).
struct PackWeights : public loom::impl::LoomPackWeightsBase<PackWeights> {
  using LoomPackWeightsBase::LoomPackWeightsBase;

  void runOnOperation() override {
    func::FuncOp f = getOperation();
    if (f.isExternal() || f->hasAttr(loom::kPackAttr))
      return;
    Block &entry = f.getBody().front();
    SmallVector<Contraction> found;
    f.walk([&](linalg::GenericOp op) {
      if (auto c = match(op, /*buffers=*/false); c && !c->group)
        found.push_back(*c);
    });
    for (Contraction &c : found) {
      AffineMap bMap = c.op.getIndexingMapsArray()[c.b];
      Value B = c.op.getDpsInputOperand(c.b)->get();
      auto type = dyn_cast<RankedTensorType>(B.getType());
      if (bMap.getNumResults() != 2 || c.reductions.size() != 1 ||
          bMap.getDimPosition(0) != c.reductions[0] || !type ||
          !type.hasStaticShape() || !type.getElementType().isF32() ||
          !fromParams(f, entry, B))
        continue;
      Value packed = packed_[B];
      if (!packed) {
        packed = pack(entry, B, type);
        packed_[B] = packed;
        int64_t K = type.getDimSize(0), N = type.getDimSize(1);
        c.op->emitRemark() << "weight [" << K << ", " << N << "] packed into "
                           << (N + kPackGroup - 1) / kPackGroup << " panels of "
                           << kPackGroup << " columns"
                           << (bf16 ? " of bf16" : "")
                           << " for the matmul kernel, once when the "
                              "weights are set (loom-pack-weights)";
      }
      rewrite(c, packed);
    }
    packed_.clear();
    known.clear();
  }

private:
  llvm::DenseMap<Value, Value> packed_; // B → its packed tensor
  llvm::DenseMap<Value, bool> known;    // fromParams, memoized

  /// Whether `v` is computed in the entry block from parameters (and
  /// constants) only, as loom-split-weight-packing will move it.
  bool fromParams(func::FuncOp f, Block &entry, Value v) {
    if (auto arg = dyn_cast<BlockArgument>(v))
      return arg.getOwner() == &entry &&
             f.getArgAttr(arg.getArgNumber(), loom::kParamArgAttr);
    auto it = known.find(v);
    if (it != known.end())
      return it->second;
    known[v] = false; // no cycles in SSA, but be safe
    Operation *def = v.getDefiningOp();
    bool ok = def->getBlock() == &entry && isMemoryEffectFree(def);
    bool anyParam = false;
    if (ok)
      def->walk([&](Operation *inner) {
        for (Value x : inner->getOperands()) {
          if (inner != def && x.getParentBlock() != &entry)
            continue; // defined inside def's regions
          Operation *xd = x.getDefiningOp();
          if (xd && xd->getNumOperands() == 0 &&
              (xd->hasTrait<OpTrait::ConstantLike>() ||
               isa<tensor::EmptyOp>(xd)))
            continue;
          if (fromParams(f, entry, x))
            anyParam = true;
          else
            ok = false;
        }
      });
    known[v] = ok && anyParam;
    return ok && anyParam;
  }

  /// Bp[g, k, j] = B[k, G·g + j] (0 past column N), right after B.
  Value pack(Block &entry, Value B, RankedTensorType type) {
    int64_t K = type.getDimSize(0), N = type.getDimSize(1);
    int64_t groups = (N + kPackGroup - 1) / kPackGroup;
    OpBuilder b(&getContext());
    if (Operation *def = B.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(&entry);
    Location loc = B.getLoc();
    Type elem = bf16 ? Type(b.getBF16Type()) : type.getElementType();
    auto outType = RankedTensorType::get({groups, K, kPackGroup}, elem);
    Value empty = tensor::EmptyOp::create(b, loc, outType.getShape(),
                                          outType.getElementType());
    AffineMap id = b.getMultiDimIdentityMap(3);
    auto gen = linalg::GenericOp::create(
        b, loc, TypeRange{outType}, ValueRange{}, ValueRange{empty},
        ArrayRef<AffineMap>{id},
        SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location l, ValueRange) {
          Value g = linalg::IndexOp::create(nb, l, 0);
          Value k = linalg::IndexOp::create(nb, l, 1);
          Value j = linalg::IndexOp::create(nb, l, 2);
          Value n = arith::AddIOp::create(
              nb, l,
              arith::MulIOp::create(
                  nb, l, g, arith::ConstantIndexOp::create(nb, l, kPackGroup)),
              j);
          Value last = arith::ConstantIndexOp::create(nb, l, N - 1);
          Value clamped = arith::MinUIOp::create(nb, l, n, last);
          Value x = tensor::ExtractOp::create(nb, l, B, ValueRange{k, clamped});
          Value inside =
              arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ule, n, last);
          Value zero = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(0));
          Value v = arith::SelectOp::create(nb, l, inside, x, zero);
          if (bf16) // round to nearest even
            v = arith::TruncFOp::create(nb, l, nb.getBF16Type(), v);
          linalg::YieldOp::create(nb, l, ValueRange{v});
        });
    return gen.getResult(0);
  }

  /// The contraction, reading B from its packed form.
  void rewrite(Contraction &c, Value packed) {
    MLIRContext *ctx = &getContext();
    SmallVector<AffineMap> maps = c.op.getIndexingMapsArray();
    unsigned numDims = maps[0].getNumDims();
    AffineExpr n = getAffineDimExpr(c.n, ctx);
    AffineExpr k = getAffineDimExpr(c.reductions[0], ctx);
    maps[c.b] = AffineMap::get(
        numDims, 0, {n.floorDiv(kPackGroup), k, n % kPackGroup}, ctx);
    SmallVector<Value> inputs(c.op.getDpsInputs());
    inputs[c.b] = packed;
    OpBuilder b(c.op);
    auto gen = linalg::GenericOp::create(
        b, c.op.getLoc(), c.op.getResultTypes(), inputs, c.op.getDpsInits(),
        maps, c.op.getIteratorTypesArray());
    gen.getRegion().takeBody(c.op.getRegion());
    if (bf16) {
      // B's element arrives as bf16: widen it for the f32 body.
      Block &body = gen.getRegion().front();
      BlockArgument arg = body.getArgument(c.b);
      arg.setType(b.getBF16Type());
      OpBuilder bb = OpBuilder::atBlockBegin(&body);
      auto wide =
          arith::ExtFOp::create(bb, c.op.getLoc(), bb.getF32Type(), arg);
      arg.replaceAllUsesExcept(wide.getResult(), wide);
    }
    for (NamedAttribute attr : c.op->getDiscardableAttrs())
      gen->setAttr(attr.getName(), attr.getValue());
    c.op->replaceAllUsesWith(gen->getResults());
    c.op.erase();
  }
};

/// Whether `op` is an all-parallel generic on tensors whose results are
/// written through identity maps (so its iteration space is its results').
bool isElementwise(linalg::GenericOp op) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInits() == 0 ||
      op.getNumReductionLoops() != 0)
    return false;
  for (OpOperand &init : op.getDpsInitsMutable())
    if (!op.getMatchingIndexingMap(&init).isIdentity())
      return false;
  return llvm::all_of(op.getIndexingMapsArray(),
                      [](AffineMap m) { return m.isProjectedPermutation(); });
}

/// The contraction `v` is a result of, through extract_slices.
linalg::GenericOp contractionOf(Value v) {
  while (auto slice = v.getDefiningOp<tensor::ExtractSliceOp>())
    v = slice.getSource();
  auto op = v.getDefiningOp<linalg::GenericOp>();
  return op && match(op, /*buffers=*/false) ? op : linalg::GenericOp();
}

/// Gathers the elementwise ops after each matmul into one epilogue over
/// its column slices (see Passes.td).
struct FuseMatmulEpilogues
    : public loom::impl::LoomFuseMatmulEpiloguesBase<FuseMatmulEpilogues> {
  void runOnOperation() override {
    func::FuncOp f = getOperation();
    MLIRContext *ctx = &getContext();
    // 1. An elementwise op on a matmul's whole result, read only through
    //    slices, is computed per slice.
    SmallVector<linalg::GenericOp> sliced;
    f.walk([&](linalg::GenericOp op) {
      if (!isElementwise(op) || op->use_empty())
        return;
      bool readsMatmul = llvm::any_of(op.getDpsInputs(), [](Value v) {
        return v.getDefiningOp<linalg::GenericOp>() && contractionOf(v);
      });
      bool onlySlices = llvm::all_of(op->getUsers(), [](Operation *user) {
        auto s = dyn_cast<tensor::ExtractSliceOp>(user);
        return s && s.hasUnitStride() &&
               s.getSourceType().getRank() == s.getType().getRank();
      });
      if (readsMatmul && onlySlices)
        sliced.push_back(op);
    });
    IRRewriter rewriter(ctx);
    for (linalg::GenericOp op : sliced) {
      for (Operation *user : llvm::make_early_inc_range(op->getUsers())) {
        auto s = cast<tensor::ExtractSliceOp>(user);
        rewriter.setInsertionPoint(s);
        FailureOr<TilingResult> tiled =
            cast<TilingInterface>(op.getOperation())
                .getTiledImplementation(rewriter, s.getMixedOffsets(),
                                        s.getMixedSizes());
        if (failed(tiled))
          return signalPassFailure();
        unsigned r = cast<OpResult>(s.getSource()).getResultNumber();
        Value v = tiled->tiledValues[r];
        if (v.getType() != s.getType())
          v = tensor::CastOp::create(rewriter, s.getLoc(), s.getType(), v);
        rewriter.replaceOp(s, v);
      }
      rewriter.eraseOp(op);
    }
    // 2. Producers with one use are fused into their consumers, as
    //    linalg-fuse-elementwise-ops does.
    RewritePatternSet patterns(ctx);
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *fused) {
          Operation *producer = fused->get().getDefiningOp();
          return producer && producer->hasOneUse();
        });
    tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, ctx);
    if (failed(applyPatternsGreedily(f, std::move(patterns))))
      return signalPassFailure();
    // 3. The elementwise ops that read a matmul's slices, and those that
    //    read their results, become one op, marked as the matmul's
    //    epilogue.
    SmallVector<linalg::GenericOp> matmuls;
    f.walk([&](linalg::GenericOp op) {
      if (match(op, /*buffers=*/false))
        matmuls.push_back(op);
    });
    for (linalg::GenericOp m : matmuls)
      if (linalg::GenericOp e = gather(m, rewriter))
        e->setAttr(loom::kEpilogueAttr, UnitAttr::get(ctx));
  }

private:
  /// The elementwise ops of `m`'s epilogue, merged into one, or null: every
  /// use of `m` must be a 2-D slice (or `m` itself) read by an elementwise
  /// op over the same rows, in `m`'s block; then their elementwise
  /// consumers (through identity maps) join, in block order.
  linalg::GenericOp gather(linalg::GenericOp m, RewriterBase &rewriter) {
    if (m->getNumResults() != 1 || m->use_empty() ||
        cast<ShapedType>(m->getResult(0).getType()).getRank() != 2)
      return {};
    SmallVector<linalg::GenericOp> group;
    auto add = [&](Operation *op) {
      auto g = dyn_cast<linalg::GenericOp>(op);
      if (!g || !isElementwise(g) || g.getNumLoops() != 2 ||
          g->getBlock() != m->getBlock() || !g.getRegion().hasOneBlock())
        return false;
      for (OpOperand &init : g.getDpsInitsMutable())
        if (g.payloadUsesValueFromOperand(&init))
          return false;
      if (!llvm::is_contained(group, g))
        group.push_back(g);
      return true;
    };
    std::optional<OpFoldResult> rows;
    for (Operation *user : m->getUsers()) {
      SmallVector<Operation *> readers{user};
      if (auto s = dyn_cast<tensor::ExtractSliceOp>(user)) {
        if (!s.hasUnitStride() || s.getType().getRank() != 2 ||
            !isConstantIntValue(s.getMixedOffsets()[0], 0))
          return {};
        OpFoldResult r = s.getMixedSizes()[0];
        if (rows && *rows != r)
          return {};
        rows = r;
        readers.assign(user->getUsers().begin(), user->getUsers().end());
      }
      for (Operation *r : readers)
        if (!add(r))
          return {};
    }
    // Consumers of the group's results through identity maps join it.
    for (size_t i = 0; i < group.size(); ++i)
      for (Operation *user : group[i]->getUsers()) {
        auto g = dyn_cast<linalg::GenericOp>(user);
        if (!g || llvm::is_contained(group, g))
          continue;
        bool identity = llvm::all_of(g->getOpOperands(), [&](OpOperand &o) {
          return !llvm::is_contained(group, o.get().getDefiningOp()) ||
                 g.getMatchingIndexingMap(&o).isIdentity();
        });
        if (identity)
          add(g);
      }
    llvm::sort(group, [](linalg::GenericOp a, linalg::GenericOp b) {
      return a->isBeforeInBlock(b);
    });
    return merge(group, rewriter);
  }

  /// `group` (elementwise ops over one iteration space, in block order) as
  /// one op at the last one's place, whose results are those used outside.
  linalg::GenericOp merge(ArrayRef<linalg::GenericOp> group,
                          RewriterBase &rewriter) {
    if (group.size() == 1)
      return group[0];
    linalg::GenericOp last = group.back();
    auto inGroup = [&](Value v) {
      auto g = v.getDefiningOp<linalg::GenericOp>();
      return g && llvm::is_contained(group, g);
    };
    SmallVector<Value> inputs, inits, replaced;
    SmallVector<AffineMap> maps;
    for (linalg::GenericOp g : group)
      for (OpOperand *o : g.getDpsInputOperands()) {
        if (inGroup(o->get()))
          continue;
        AffineMap map = g.getMatchingIndexingMap(o);
        bool seen = false;
        for (auto [v, mp] : llvm::zip(inputs, maps))
          seen |= v == o->get() && mp == map;
        if (!seen) {
          inputs.push_back(o->get());
          maps.push_back(map);
        }
      }
    for (linalg::GenericOp g : group)
      for (OpResult r : g->getResults()) {
        bool outside = false;
        for (Operation *user : r.getUsers()) {
          auto ug = dyn_cast<linalg::GenericOp>(user);
          if (ug && llvm::is_contained(group, ug))
            continue;
          if (user->getBlock() != last->getBlock() ||
              user->isBeforeInBlock(last))
            return {};
          outside = true;
        }
        if (outside) {
          replaced.push_back(r);
          inits.push_back(g.getDpsInitOperand(r.getResultNumber())->get());
          maps.push_back(g.getMatchingIndexingMap(
              g.getDpsInitOperand(r.getResultNumber())));
        }
      }
    if (replaced.empty())
      return {};
    SmallVector<Type> types;
    for (Value r : replaced)
      types.push_back(r.getType());
    rewriter.setInsertionPoint(last);
    auto fused = linalg::GenericOp::create(
        rewriter, last.getLoc(), types, inputs, inits, maps,
        last.getIteratorTypesArray(),
        [&](OpBuilder &b, Location loc, ValueRange args) {
          IRMapping map;
          DenseMap<Value, Value> scalar; // a group result → its element
          for (linalg::GenericOp g : group) {
            Block &body = g.getRegion().front();
            for (OpOperand *o : g.getDpsInputOperands()) {
              Value arg = body.getArgument(o->getOperandNumber());
              if (inGroup(o->get())) {
                map.map(arg, scalar.lookup(o->get()));
                continue;
              }
              AffineMap m = g.getMatchingIndexingMap(o);
              for (auto [i, v] : llvm::enumerate(inputs))
                if (v == o->get() && maps[i] == m)
                  map.map(arg, args[i]);
            }
            for (Operation &op : body.without_terminator())
              b.clone(op, map);
            for (auto [r, y] : llvm::zip(g->getResults(),
                                         body.getTerminator()->getOperands()))
              scalar[r] = map.lookupOrDefault(y);
          }
          SmallVector<Value> yields;
          for (Value r : replaced)
            yields.push_back(scalar.lookup(r));
          linalg::YieldOp::create(b, loc, yields);
        });
    for (auto [r, v] : llvm::zip(replaced, fused->getResults()))
      rewriter.replaceAllUsesWith(r, v);
    for (linalg::GenericOp g : llvm::reverse(group))
      rewriter.eraseOp(g);
    return fused;
  }
};

/// `type` with every size, stride and the offset dynamic, except a unit
/// innermost stride: the type a shared kernel takes.
MemRefType generalized(MemRefType type) {
  int64_t rank = type.getRank();
  SmallVector<int64_t> shape(rank, ShapedType::kDynamic);
  SmallVector<int64_t> strides(rank, ShapedType::kDynamic);
  SmallVector<int64_t> old;
  int64_t offset;
  if (rank > 0 && succeeded(type.getStridesAndOffset(old, offset)) &&
      old.back() == 1)
    strides.back() = 1;
  auto layout =
      StridedLayoutAttr::get(type.getContext(), ShapedType::kDynamic, strides);
  return MemRefType::get(shape, type.getElementType(), layout,
                         type.getMemorySpace());
}

/// Moves every contraction into a kernel function shared by all the
/// contractions of the same form (indexing maps, iterators, ranks), whatever
/// their sizes: one copy of the register-blocked code per form instead of
/// one per matmul keeps compile time and code size down.
struct OutlineContractions
    : public loom::impl::LoomOutlineContractionsBase<OutlineContractions> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    SmallVector<linalg::GenericOp> found;
    module.walk([&](linalg::GenericOp op) {
      if (match(op) &&
          !op->getParentOfType<func::FuncOp>()->hasAttr(loom::kKernelAttr))
        found.push_back(op);
    });
    llvm::StringMap<func::FuncOp> kernels;
    OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
    for (linalg::GenericOp op : found) {
      std::optional<Epilogue> epi = matchEpilogue(*match(op));
      // The kernel's operands: the matmul's, then the epilogue's other
      // inputs and its outputs, then the gates' row count.
      SmallVector<Value> operands(op->getOperands());
      if (epi)
        for (OpOperand &o : epi->op->getOpOperands())
          if (!llvm::any_of(
                  epi->gates,
                  [&](auto g) { return g.first == o.getOperandNumber(); }) &&
              !llvm::is_contained(operands, o.get()))
            operands.push_back(o.get());
      if (epi) {
        llvm::SetVector<Value> above = *scalarsAbove(epi->op);
        for (Value v : above)
          if (!v.getDefiningOp() ||
              !v.getDefiningOp()->hasTrait<OpTrait::ConstantLike>())
            operands.push_back(v); // e.g. the time step, for lengths
      }
      SmallVector<Type> types;
      for (Value v : operands)
        types.push_back(isa<MemRefType>(v.getType())
                            ? generalized(cast<MemRefType>(v.getType()))
                            : v.getType());
      Value rows;
      if (epi) {
        OpBuilder cb(epi->op);
        rows = getValueOrCreateConstantIndexOp(cb, op.getLoc(), epi->rows);
        types.push_back(rows.getType());
      }
      // The kernel's body, printed, is its key.
      auto fnType = FunctionType::get(ctx, types, {});
      auto candidate =
          func::FuncOp::create(mb, op.getLoc(), "loom_matmul", fnType);
      Block *entry = candidate.addEntryBlock();
      OpBuilder b = OpBuilder::atBlockBegin(entry);
      IRMapping map;
      for (auto [v, arg] : llvm::zip(operands, entry->getArguments()))
        map.map(v, arg);
      if (epi)
        cloneEpilogue(b, *epi, op, map, entry->getArguments().back());
      else
        b.clone(*op, map);
      func::ReturnOp::create(b, op.getLoc());
      std::string key;
      {
        llvm::raw_string_ostream os(key);
        candidate.getBody().front().print(os);
      }
      func::FuncOp &kernel = kernels[key];
      if (!kernel) {
        kernel = candidate;
        kernel.setSymName((epi ? "loom_matmul_epilogue" : "loom_matmul") +
                          std::to_string(kernels.size() - 1));
        kernel.setPrivate();
        kernel->setAttr(loom::kKernelAttr, UnitAttr::get(ctx));
        // One copy of the code: LLVM must not inline it back into every
        // caller.
        kernel->setAttr(
            "passthrough",
            ArrayAttr::get(ctx, {StringAttr::get(ctx, "noinline")}));
      } else {
        candidate.erase();
        op->emitRemark() << "matmul shares the register-blocked kernel @"
                         << kernel.getSymName()
                         << " with a matmul of the same form "
                            "(loom-outline-contractions)";
      }
      // The call replaces the epilogue (after every operand's definition;
      // nothing between the matmul and it writes memory).
      OpBuilder cb(epi ? epi->op.getOperation() : op.getOperation());
      SmallVector<Value> args;
      for (auto [v, t] : llvm::zip(operands, types))
        args.push_back(
            v.getType() == t
                ? v
                : memref::CastOp::create(cb, op.getLoc(), t, v).getResult());
      if (epi)
        args.push_back(rows);
      func::CallOp::create(cb, op.getLoc(), kernel, args);
      if (epi) {
        epi->op.erase();
        if (epi->fill)
          epi->fill.erase();
      }
      op.erase();
    }
  }

private:
  /// Into a kernel: C's fill, the matmul, C's gate slices and the
  /// epilogue, with `map` giving the kernel's arguments.
  static void cloneEpilogue(OpBuilder &b, Epilogue epi, linalg::GenericOp op,
                            IRMapping &map, Value rows) {
    Location loc = op.getLoc();
    Value C = map.lookup(op.getDpsInitOperand(0)->get());
    if (epi.fill) {
      Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
      linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{C});
    }
    b.clone(*op, map);
    for (auto [input, column] : epi.gates) {
      SmallVector<OpFoldResult> offsets{b.getIndexAttr(0),
                                        b.getIndexAttr(column)};
      SmallVector<OpFoldResult> sizes{rows, b.getIndexAttr(epi.units)};
      SmallVector<OpFoldResult> strides(2, b.getIndexAttr(1));
      map.map(epi.op->getOperand(input),
              memref::SubViewOp::create(b, loc, C, offsets, sizes, strides)
                  .getResult());
    }
    llvm::SetVector<Value> above = *scalarsAbove(epi.op);
    for (Value v : above)
      if (!map.contains(v)) // a constant
        map.map(v, b.clone(*v.getDefiningOp())->getResult(0));
    b.clone(*epi.op, map);
  }
};

} // namespace
