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
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/StringMap.h"

namespace loom {
#define GEN_PASS_DEF_LOOMVECTORIZECONTRACTIONS
#define GEN_PASS_DEF_LOOMOUTLINECONTRACTIONS
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
};

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
/// dimension n (contiguous), C of rank ≥ 2, and A not indexed by n.
std::optional<Contraction> match(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1)
    return std::nullopt;
  // Body: yield (acc + x·y) in any operand order.
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 3)
    return std::nullopt;
  auto mul = dyn_cast<arith::MulFOp>(&body.front());
  auto add = dyn_cast<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  if (!mul || !add || !body.getArgument(0).getType().isF32())
    return std::nullopt;
  Value acc = body.getArgument(2);
  if (!((add.getLhs() == acc && add.getRhs() == mul) ||
        (add.getRhs() == acc && add.getLhs() == mul)))
    return std::nullopt;
  if (!((mul.getLhs() == body.getArgument(0) &&
         mul.getRhs() == body.getArgument(1)) ||
        (mul.getLhs() == body.getArgument(1) &&
         mul.getRhs() == body.getArgument(0))))
    return std::nullopt;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1 || yield.getOperand(0) != add.getResult())
    return std::nullopt;

  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  for (AffineMap map : maps)
    if (!map.isProjectedPermutation(/*allowZeroInResults=*/false))
      return std::nullopt;
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
  if (!hasUnitInnerStride(op.getDpsInputOperand(c.b)->get()) ||
      !hasUnitInnerStride(op.getDpsInitOperand(0)->get()))
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
    int64_t panel = width * panelVectors;
    auto panels = scf::ForOp::create(b, loc, nLo, nHi, cst(panel));
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
    buildOuter(0);
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

  Value cst(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

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
    auto tiles = scf::ForOp::create(b, loc, p0, panelEnd, cst(nv * width));
    b.setInsertionPointToStart(tiles.getBody());
    tile(m0, tiles.getInductionVar(), mr, nv);
  }

  /// One MR × NR tile at (m0, n0).
  void tile(Value m0, Value n0, int64_t mr, int64_t nv) {
    curVectors = nv;
    Value N = nHi;
    SmallVector<Value> colStarts;
    masks.clear();
    for (int64_t j = 0; j < curVectors; ++j) {
      Value start = arith::AddIOp::create(b, loc, n0, cst(j * width));
      Value left = arith::SubIOp::create(
          b, loc, arith::MaxSIOp::create(b, loc, N, start), start);
      masks.push_back(
          vector::CreateMaskOp::create(b, loc, maskType, ValueRange{left}));
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
        accs.push_back(vector::MaskedLoadOp::create(
            b, loc, vecType, C, cIndices(rowIdx[i], colStarts[j]), masks[j],
            passThru));
    // The reduction loops, innermost, carrying the accumulators.
    accs = reduce(0, accs, rowIdx, colStarts);
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < curVectors; ++j)
        vector::MaskedStoreOp::create(b, loc, C,
                                      cIndices(rowIdx[i], colStarts[j]),
                                      masks[j], accs[i * curVectors + j]);
  }

  SmallVector<Value> reduce(unsigned k, ValueRange accs, ArrayRef<Value> rowIdx,
                            ArrayRef<Value> colStarts) {
    if (k == c.reductions.size())
      return step(accs, rowIdx, colStarts);
    unsigned d = c.reductions[k];
    auto loop = kLo ? scf::ForOp::create(b, loc, kLo, kHi, one, accs)
                    : scf::ForOp::create(b, loc, zero, sizes[d], one, accs);
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
    for (auto [j, start] : llvm::enumerate(colStarts)) {
      ivs[c.n] = start;
      bs.push_back(vector::MaskedLoadOp::create(
          b, loc, vecType, B, indices(maps[c.b]), masks[j], passThru));
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
