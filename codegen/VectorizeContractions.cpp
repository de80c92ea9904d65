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
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/StringMap.h"

namespace loom {
#define GEN_PASS_DEF_LOOMVECTORIZECONTRACTIONS
#define GEN_PASS_DEF_LOOMOUTLINECONTRACTIONS
#define GEN_PASS_DEF_LOOMPACKWEIGHTS
#define GEN_PASS_DEF_LOOMCOLLAPSECONTRACTIONDIMS
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
  auto add = dyn_cast<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
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
      loop->setAttr("loop_annotation", innermostAnnotation());
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

  /// The innermost reduction loop is already register-blocked: LLVM must
  /// neither unroll nor interleave it. Left alone, it unrolls the 1-row
  /// (GEMV) tile by 4, whose eight B streams then need more address
  /// registers than x86 has, and the spills cost C1 (batch 1) 10-15%.
  /// (convert-scf-to-cf carries the annotation to the loop's latch.)
  LLVM::LoopAnnotationAttr innermostAnnotation() {
    MLIRContext *ctx = b.getContext();
    auto yes = BoolAttr::get(ctx, true);
    auto vectorize = LLVM::LoopVectorizeAttr::get(ctx, /*disable=*/yes, {}, {},
                                                  {}, {}, {}, {});
    auto interleave =
        LLVM::LoopInterleaveAttr::get(ctx, b.getI32IntegerAttr(1));
    auto unroll =
        LLVM::LoopUnrollAttr::get(ctx, /*disable=*/yes, {}, {}, {}, {}, {}, {});
    return LLVM::LoopAnnotationAttr::get(ctx, {}, vectorize, interleave, unroll,
                                         {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
                                         {});
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

struct VectorizeContractions
    : public loom::impl::LoomVectorizeContractionsBase<VectorizeContractions> {
  using LoomVectorizeContractionsBase::LoomVectorizeContractionsBase;

  void runOnOperation() override {
    SmallVector<Contraction> found;
    getOperation().walk([&](linalg::GenericOp op) {
      if (auto c = match(op))
        found.push_back(*c);
    });
    for (Contraction &c : found) {
      if (c.group % vectorWidth)
        continue; // packed panels narrower than a vector: plain loops
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
      SmallVector<Value> operands(op->getOperands());
      SmallVector<Type> types;
      for (Value v : operands)
        types.push_back(generalized(cast<MemRefType>(v.getType())));
      // The kernel's body, printed, is its key.
      auto fnType = FunctionType::get(ctx, types, {});
      auto candidate =
          func::FuncOp::create(mb, op.getLoc(), "loom_matmul", fnType);
      Block *entry = candidate.addEntryBlock();
      OpBuilder b = OpBuilder::atBlockBegin(entry);
      IRMapping map;
      for (auto [v, arg] : llvm::zip(operands, entry->getArguments()))
        map.map(v, arg);
      Operation *clone = b.clone(*op, map);
      func::ReturnOp::create(b, op.getLoc());
      std::string key;
      {
        llvm::raw_string_ostream os(key);
        clone->print(
            os, OpPrintingFlags().skipRegions(false).elideLargeElementsAttrs());
      }
      func::FuncOp &kernel = kernels[key];
      if (!kernel) {
        kernel = candidate;
        kernel.setSymName("loom_matmul" + std::to_string(kernels.size() - 1));
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
      OpBuilder cb(op);
      SmallVector<Value> args;
      for (auto [v, t] : llvm::zip(operands, types))
        args.push_back(
            v.getType() == t
                ? v
                : memref::CastOp::create(cb, op.getLoc(), t, v).getResult());
      func::CallOp::create(cb, op.getLoc(), kernel, args);
      op.erase();
    }
  }
};

} // namespace
