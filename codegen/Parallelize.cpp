//===- Parallelize.cpp - loops split across the threads of a pool -----===//
//
// Three steps take a loop whose iterations are independent to the thread
// pool of runtime/ThreadPool.h:
//  1. marking: loom-vectorize-contractions marks a matmul's loop over column
//     tiles (`loom.parallel = "range"`), loom-linalg-to-loops the outer loop
//     of an elementwise op (`"iterations"`);
//  2. loom-outline-parallel-loops outlines each outermost marked loop into a
//     function of a range of iterations, called once on the whole range;
//  3. loom-parallel-to-runtime, in the LLVM dialect, packs the call's
//     arguments into a stack struct and calls `loom_parallel_for` with a
//     trampoline, which runs one contiguous range per thread.
// Every output element is computed by the same operations in the same order
// whatever the number of threads, so results do not depend on it.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

namespace loom {
#define GEN_PASS_DEF_LOOMLINALGTOLOOPS
#define GEN_PASS_DEF_LOOMOUTLINEPARALLELLOOPS
#define GEN_PASS_DEF_LOOMPARALLELTORUNTIME
#include "codegen/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

//===----------------------------------------------------------------------===//
// loom-linalg-to-loops
//===----------------------------------------------------------------------===//

/// Scalar operations of one iteration of `op`'s outermost loop, counting a
/// dynamic size as 32.
int64_t workPerOuterIteration(linalg::LinalgOp op) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t elements = 1;
  for (int64_t d = 1; d < int64_t(ranges.size()); ++d)
    elements *= ShapedType::isDynamic(ranges[d]) ? 32 : ranges[d];
  int64_t bodyOps = 1;
  if (op->getNumRegions() == 1 && !op->getRegion(0).empty())
    bodyOps = std::max<int64_t>(
        1, int64_t(op->getRegion(0).front().getOperations().size()) - 1);
  return elements * bodyOps;
}

/// A reduction generic in registers: parallel dims outermost, then the
/// reductions, one output indexed by (some of) the parallel dims whose
/// element the body reads only to combine it (`acc + f(...)` or
/// `max(acc, f(...))`) with what it yields. Lowered to loops in which the
/// accumulator is an scf.for iter_arg (loaded before the reduction loops,
/// stored after), not a load and a store per iteration as
/// convert-linalg-to-loops emits: in an outlined function LLVM cannot prove
/// that the output does not alias the inputs, so it could neither keep the
/// sum in a register nor vectorize the loop. The sum is marked `reassoc`
/// so that LLVM may vectorize it (a softmax's Σ exp over a 10000-word
/// vocabulary): the order then depends on the target's vector width, never
/// on the number of threads.
struct ReductionLowering {
  linalg::GenericOp op;
  Operation *combiner = nullptr;
  unsigned numParallel = 0;

  static std::optional<ReductionLowering> match(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
        op.getNumResults() != 0)
      return std::nullopt;
    auto iters = op.getIteratorTypesArray();
    unsigned p = 0;
    while (p < iters.size() && iters[p] == utils::IteratorType::parallel)
      ++p;
    if (p == iters.size())
      return std::nullopt;
    for (unsigned d = p; d < iters.size(); ++d)
      if (iters[d] != utils::IteratorType::reduction)
        return std::nullopt;
    // Operands indexed by plain loop dims (loads need no affine.apply).
    for (AffineMap map : op.getIndexingMapsArray())
      if (!map.isProjectedPermutation(/*allowZeroInResults=*/false))
        return std::nullopt;
    // The output is indexed by parallel dims only.
    AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
    for (AffineExpr e : outMap.getResults()) {
      auto d = dyn_cast<AffineDimExpr>(e);
      if (!d || d.getPosition() >= p)
        return std::nullopt;
    }
    Block &body = op.getRegion().front();
    BlockArgument acc = body.getArguments().back();
    auto yield = cast<linalg::YieldOp>(body.getTerminator());
    if (!acc.hasOneUse() || yield.getNumOperands() != 1)
      return std::nullopt;
    Operation *comb = *acc.getUsers().begin();
    if (comb != yield.getOperand(0).getDefiningOp() ||
        !isa<arith::AddFOp, arith::MaximumFOp, arith::MaxNumFOp>(comb))
      return std::nullopt;
    return ReductionLowering{op, comb, p};
  }

  void lower(IRRewriter &rewriter, bool markParallel) {
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    SmallVector<Range, 4> ranges = cast<linalg::LinalgOp>(op.getOperation())
                                       .createLoopRanges(rewriter, loc);
    SmallVector<Value> ivs(ranges.size());
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    auto size = [&](unsigned d) {
      return getValueOrCreateConstantIndexOp(rewriter, loc, ranges[d].size);
    };
    auto indices = [&](AffineMap map) {
      SmallVector<Value> idx;
      for (AffineExpr e : map.getResults())
        idx.push_back(ivs[cast<AffineDimExpr>(e).getPosition()]);
      return idx;
    };
    OpBuilder::InsertionGuard g(rewriter);
    // Parallel loops.
    for (unsigned d = 0; d < numParallel; ++d) {
      auto loop = scf::ForOp::create(rewriter, loc, zero, size(d), one);
      if (d == 0 && markParallel)
        loop->setAttr(kParallelAttr, rewriter.getStringAttr("iterations"));
      rewriter.setInsertionPointToStart(loop.getBody());
      ivs[d] = loop.getInductionVar();
    }
    OpOperand *out = op.getDpsInitOperand(0);
    SmallVector<Value> outIdx = indices(op.getMatchingIndexingMap(out));
    Value init = memref::LoadOp::create(rewriter, loc, out->get(), outIdx);
    // Reduction loops carrying the accumulator.
    SmallVector<scf::ForOp> loops;
    Value acc = init;
    for (unsigned d = numParallel; d < ranges.size(); ++d) {
      auto loop = scf::ForOp::create(rewriter, loc, zero, size(d), one,
                                     ValueRange{acc});
      if (!loops.empty())
        scf::YieldOp::create(rewriter, loc, loop.getResults());
      rewriter.setInsertionPointToStart(loop.getBody());
      ivs[d] = loop.getInductionVar();
      acc = loop.getRegionIterArgs()[0];
      loops.push_back(loop);
    }
    // The body, on loaded elements.
    Block &body = op.getRegion().front();
    IRMapping map;
    for (OpOperand *in : op.getDpsInputOperands()) {
      BlockArgument arg = body.getArgument(in->getOperandNumber());
      if (isa<MemRefType>(in->get().getType()))
        map.map(arg,
                memref::LoadOp::create(rewriter, loc, in->get(),
                                       indices(op.getMatchingIndexingMap(in))));
      else
        map.map(arg, in->get());
    }
    map.map(body.getArguments().back(), acc);
    for (Operation &inner : body.without_terminator()) {
      if (auto index = dyn_cast<linalg::IndexOp>(&inner)) {
        map.map(index.getResult(), ivs[index.getDim()]);
        continue;
      }
      Operation *clone = rewriter.clone(inner, map);
      if (&inner == combiner)
        if (auto add = dyn_cast<arith::AddFOp>(clone))
          add.setFastmath(add.getFastmath() | arith::FastMathFlags::reassoc);
    }
    Value next = map.lookup(combiner->getResult(0));
    scf::YieldOp::create(rewriter, loc, next);
    rewriter.setInsertionPointAfter(loops.front());
    memref::StoreOp::create(rewriter, loc, loops.front().getResult(0),
                            out->get(), outIdx);
    rewriter.eraseOp(op);
  }
};

struct LinalgToLoops : public loom::impl::LoomLinalgToLoopsBase<LinalgToLoops> {
  using LoomLinalgToLoopsBase::LoomLinalgToLoopsBase;

  void runOnOperation() override {
    SmallVector<linalg::LinalgOp> ops;
    getOperation().walk([&](linalg::LinalgOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : ops) {
      if (!op.hasPureBufferSemantics()) {
        op->emitError("loom-linalg-to-loops expects buffers");
        return signalPassFailure();
      }
      auto iters = op.getIteratorTypesArray();
      bool parallelOuter = !iters.empty() &&
                           iters[0] == utils::IteratorType::parallel &&
                           workPerOuterIteration(op) >= minWork;
      if (auto generic = dyn_cast<linalg::GenericOp>(op.getOperation()))
        if (auto red = ReductionLowering::match(generic)) {
          red->lower(rewriter, parallelOuter && red->numParallel > 0);
          continue;
        }
      rewriter.setInsertionPoint(op);
      FailureOr<linalg::LinalgLoops> loops = linalgOpToLoops(rewriter, op);
      if (failed(loops)) {
        op->emitError("cannot lower to loops");
        return signalPassFailure();
      }
      if (parallelOuter && !loops->empty())
        if (auto outer = dyn_cast<scf::ForOp>(loops->front()))
          outer->setAttr(kParallelAttr, rewriter.getStringAttr("iterations"));
      rewriter.eraseOp(op);
    }
  }
};

//===----------------------------------------------------------------------===//
// loom-outline-parallel-loops
//===----------------------------------------------------------------------===//

bool isMarked(scf::ForOp loop) {
  return loop->hasAttr(kParallelAttr) && loop.getInitArgs().empty();
}

struct OutlineParallelLoops
    : public loom::impl::LoomOutlineParallelLoopsBase<OutlineParallelLoops> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    for (func::FuncOp f : funcs) {
      if (f.isExternal())
        continue;
      // Outermost marked loops only; inner marks are dropped (the runtime
      // would run them serially anyway).
      SmallVector<scf::ForOp> loops;
      f.walk<WalkOrder::PreOrder>([&](scf::ForOp loop) {
        if (!loop->hasAttr(kParallelAttr))
          return;
        bool nested = false;
        for (Operation *p = loop->getParentOp(); p && p != f;
             p = p->getParentOp())
          if (auto outer = dyn_cast<scf::ForOp>(p))
            nested |= outer->hasAttr(kParallelAttr);
        if (nested || !isMarked(loop)) {
          loop->removeAttr(kParallelAttr);
          return;
        }
        loops.push_back(loop);
      });
      unsigned k = 0;
      for (scf::ForOp loop : loops)
        outline(f, loop, k++);
    }
    // Marks left inside non-outlined code mean nothing any more.
    module.walk([](Operation *op) { op->removeAttr(kParallelEndAttr); });
  }

  void outline(func::FuncOp parent, scf::ForOp loop, unsigned index) {
    Location loc = loop.getLoc();
    MLIRContext *ctx = &getContext();
    bool range =
        cast<StringAttr>(loop->getAttr(kParallelAttr)).getValue() == "range";
    // What the body reads from outside: the loop bounds (for iterations),
    // and every value defined above, constants excepted (cloned instead).
    llvm::SetVector<Value> above;
    if (!range) {
      above.insert(loop.getLowerBound());
      above.insert(loop.getStep());
    }
    getUsedValuesDefinedAbove(loop.getRegion(), above);
    SmallVector<Value> captured, constants;
    for (Value v : above) {
      Operation *def = v.getDefiningOp();
      if (def && def->hasTrait<OpTrait::ConstantLike>())
        constants.push_back(v);
      else
        captured.push_back(v);
    }
    Type indexType = IndexType::get(ctx);
    SmallVector<Type> argTypes{indexType, indexType};
    for (Value v : captured)
      argTypes.push_back(v.getType());
    std::string name =
        (parent.getSymName() + "__par" + std::to_string(index)).str();
    OpBuilder mb(parent);
    mb.setInsertionPointAfter(parent);
    auto fn = func::FuncOp::create(mb, loc, name,
                                   FunctionType::get(ctx, argTypes, {}));
    fn.setPrivate();
    fn->setAttr(kParallelBodyAttr, UnitAttr::get(ctx));
    Block *entry = fn.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    IRMapping map;
    for (Value c : constants)
      map.map(c, b.clone(*c.getDefiningOp())->getResult(0));
    for (auto [k, v] : llvm::enumerate(captured))
      map.map(v, entry->getArgument(2 + k));
    Value begin = entry->getArgument(0), end = entry->getArgument(1);
    Block &body = *loop.getBody();
    if (range) {
      map.map(loop.getInductionVar(), begin);
      for (Operation &op : body.without_terminator())
        b.clone(op, map);
      SmallVector<Operation *> ends;
      fn.walk([&](Operation *op) {
        if (op->hasAttr(kParallelEndAttr))
          ends.push_back(op);
      });
      for (Operation *op : ends) {
        op->getResult(0).replaceAllUsesWith(end);
        op->erase();
      }
    } else {
      Value one = arith::ConstantIndexOp::create(b, loc, 1);
      auto inner = scf::ForOp::create(b, loc, begin, end, one);
      b.setInsertionPointToStart(inner.getBody());
      Value lb = map.lookup(loop.getLowerBound());
      Value step = map.lookup(loop.getStep());
      Value iv = arith::AddIOp::create(
          b, loc, lb,
          arith::MulIOp::create(b, loc, inner.getInductionVar(), step));
      map.map(loop.getInductionVar(), iv);
      for (Operation &op : body.without_terminator())
        b.clone(op, map);
      b.setInsertionPointToEnd(entry);
    }
    func::ReturnOp::create(b, loc);

    // The call, on the whole iteration space.
    OpBuilder cb(loop);
    Value zero = arith::ConstantIndexOp::create(cb, loc, 0);
    Value n = loop.getUpperBound();
    if (!range) {
      // ceil((ub - lb) / step), at least 0.
      Value span = arith::SubIOp::create(cb, loc, loop.getUpperBound(),
                                         loop.getLowerBound());
      span = arith::MaxSIOp::create(cb, loc, span, zero);
      n = arith::CeilDivUIOp::create(cb, loc, span, loop.getStep());
    }
    SmallVector<Value> args{zero, n};
    args.append(captured.begin(), captured.end());
    loop->emitRemark()
        << (range ? "matmul columns (with a fused epilogue: units, every "
                    "gate of each) split across threads in contiguous "
                    "blocks, the same block on the same core every call"
                  : "outer loop split across threads in contiguous ranges")
        << ", in @" << name << " (loom-outline-parallel-loops)";
    auto call = func::CallOp::create(cb, loc, fn, args);
    call->setAttr(kParallelCallAttr, UnitAttr::get(ctx));
    loop.erase();
  }
};

//===----------------------------------------------------------------------===//
// loom-parallel-to-runtime
//===----------------------------------------------------------------------===//

struct ParallelToRuntime
    : public loom::impl::LoomParallelToRuntimeBase<ParallelToRuntime> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    auto ptrType = LLVM::LLVMPointerType::get(ctx);
    auto i64 = IntegerType::get(ctx, 64);
    auto voidType = LLVM::LLVMVoidType::get(ctx);
    SmallVector<LLVM::LLVMFuncOp> bodies;
    for (auto f : module.getOps<LLVM::LLVMFuncOp>())
      if (f->hasAttr(kParallelBodyAttr))
        bodies.push_back(f);
    if (bodies.empty())
      return;
    // The calls of each body, found in one walk.
    llvm::DenseMap<StringAttr, SmallVector<LLVM::CallOp>> callsOf;
    module.walk([&](LLVM::CallOp call) {
      if (auto callee = call.getCalleeAttr())
        callsOf[callee.getAttr()].push_back(call);
    });
    auto runtime = module.lookupSymbol<LLVM::LLVMFuncOp>(kParallelForSymbol);
    if (!runtime) {
      OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
      runtime = LLVM::LLVMFuncOp::create(
          b, module.getLoc(), kParallelForSymbol,
          LLVM::LLVMFunctionType::get(voidType, {ptrType, ptrType, i64}));
    }
    for (LLVM::LLVMFuncOp body : bodies) {
      body->removeAttr(kParallelBodyAttr);
      auto bodyType = body.getFunctionType();
      if (bodyType.getNumParams() < 2 || bodyType.getParamType(0) != i64 ||
          bodyType.getParamType(1) != i64) {
        body.emitError("internal: a parallel loop body takes (i64, i64, ...)");
        return signalPassFailure();
      }
      // Every call of the body (the trampoline's aside) goes through the pool.
      SmallVector<LLVM::CallOp> &calls = callsOf[body.getSymNameAttr()];
      ArrayRef<Type> fields = bodyType.getParams().drop_front(2);
      auto structType = LLVM::LLVMStructType::getLiteral(ctx, fields);
      // The trampoline: (context, begin, end) -> body(begin, end, fields...).
      OpBuilder mb(body);
      mb.setInsertionPointAfter(body);
      Location loc = body.getLoc();
      auto task = LLVM::LLVMFuncOp::create(
          mb, loc, (body.getSymName() + "__task").str(),
          LLVM::LLVMFunctionType::get(voidType, {ptrType, i64, i64}),
          LLVM::Linkage::Internal);
      Block *entry = task.addEntryBlock(mb);
      OpBuilder tb = OpBuilder::atBlockBegin(entry);
      Value packed =
          LLVM::LoadOp::create(tb, loc, structType, entry->getArgument(0));
      SmallVector<Value> callArgs{entry->getArgument(1), entry->getArgument(2)};
      for (unsigned k = 0; k < fields.size(); ++k)
        callArgs.push_back(LLVM::ExtractValueOp::create(tb, loc, packed, k));
      LLVM::CallOp::create(tb, loc, body, callArgs);
      LLVM::ReturnOp::create(tb, loc, ValueRange{});

      for (LLVM::CallOp call : calls) {
        auto caller = call->getParentOfType<LLVM::LLVMFuncOp>();
        OpBuilder eb = OpBuilder::atBlockBegin(&caller.getBody().front());
        Value one =
            LLVM::ConstantOp::create(eb, loc, i64, eb.getI64IntegerAttr(1));
        Value slot = LLVM::AllocaOp::create(eb, loc, ptrType, structType, one);
        OpBuilder b(call);
        Value value = LLVM::UndefOp::create(b, loc, structType);
        for (unsigned k = 0; k < fields.size(); ++k)
          value = LLVM::InsertValueOp::create(b, loc, value,
                                              call.getArgOperands()[2 + k], k);
        LLVM::StoreOp::create(b, loc, value, slot);
        Value fnPtr = LLVM::AddressOfOp::create(b, loc, task);
        LLVM::CallOp::create(b, loc, runtime,
                             ValueRange{fnPtr, slot, call.getArgOperands()[1]});
        call.erase();
      }
    }
  }
};

} // namespace
