//===- Differentiate.cpp - reverse-mode autodiff of loom models -------===//
//
// `<M>_loss` → `<M>_grad`: the forward ops are cloned, then walked in
// reverse, each op's DifferentiableOpInterface building the adjoints of its
// operands from those of its results. Adjoints of a value used several times
// are summed. loom.scan is handled here: its reverse is a backward scan.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace loom {
#define GEN_PASS_DEF_LOOMDIFFERENTIATE
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getElementType().isF32();
}

/// Adjoints of values, summed over uses.
class Adjoints {
public:
  explicit Adjoints(OpBuilder &b) : b(b) {}
  Value get(Value v) const { return map.lookup(v); }
  void add(Location loc, Value v, Value g) {
    if (!g || !isFloatTensor(v))
      return;
    Value &slot = map[v];
    slot = slot ? AddOp::create(b, loc, v.getType(), slot, g).getResult() : g;
  }

private:
  OpBuilder &b;
  llvm::DenseMap<Value, Value> map;
};

class Differentiator {
public:
  explicit Differentiator(OpBuilder &b) : b(b) {}

  /// Backpropagates through `ops` (in program order) in reverse, reading
  /// and writing `adj`. Fails on an op without a rule.
  LogicalResult backprop(ArrayRef<Operation *> ops, Adjoints &adj) {
    for (Operation *op : llvm::reverse(ops)) {
      SmallVector<Value> dys;
      bool any = false;
      for (Value r : op->getResults()) {
        dys.push_back(adj.get(r));
        any |= dys.back() != nullptr;
      }
      if (!any)
        continue;
      if (auto scan = dyn_cast<ScanOp>(op)) {
        if (failed(backpropScan(scan, dys, adj)))
          return failure();
        continue;
      }
      if (isa<ParamOp>(op))
        continue; // collected by the caller
      // Constants, zeros and sizes: nothing to propagate to.
      if (llvm::none_of(op->getOperands(), isFloatTensor))
        continue;
      auto diff = dyn_cast<DifferentiableOpInterface>(op);
      if (!diff)
        return op->emitOpError("has no differentiation rule yet");
      // Rules expect an adjoint for every float result.
      for (auto [r, dy] : llvm::zip(op->getResults(), dys))
        if (!dy && isFloatTensor(r) && op->getNumResults() == 1)
          dy = ZerosLikeOp::create(b, op->getLoc(), r);
      SmallVector<Value> grads;
      if (failed(diff.buildVJP(b, dys, grads)))
        return failure();
      for (auto [operand, g] : llvm::zip(op->getOperands(), grads))
        adj.add(op->getLoc(), operand, g);
    }
    return success();
  }

  /// Saved states for the scans of the function being differentiated.
  llvm::DenseMap<Operation *, SmallVector<Value>> savedStates;

  /// Replaces `scan` by one that also outputs the state entering each step.
  void saveStates(ScanOp scan) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(scan);
    unsigned n = scan.getNumOutputs(), m = scan.getInits().size();
    Block &body = scan.getBodyBlock();
    auto yield = cast<YieldOp>(body.getTerminator());
    SmallVector<Type> types;
    for (unsigned k = 0; k < n; ++k)
      types.push_back(scan.getResult(k).getType());
    for (Value s : scan.getInits()) {
      auto st = cast<RankedTensorType>(s.getType());
      SmallVector<int64_t> shape{ShapedType::kDynamic};
      shape.append(st.getShape().begin(), st.getShape().end());
      types.push_back(RankedTensorType::get(shape, st.getElementType()));
    }
    for (unsigned k = 0; k < m; ++k)
      types.push_back(scan.getResult(n + k).getType());
    auto saved =
        ScanOp::create(b, scan.getLoc(), types, scan.getInputs(),
                       scan.getInits(), scan.getLengths(), scan.getReverse());
    saved.getBody().takeBody(scan.getBody());
    SmallVector<Value> yields(yield.getValues().begin(),
                              yield.getValues().begin() + n);
    for (unsigned k = 0; k < m; ++k)
      yields.push_back(body.getArgument(scan.getInputs().size() + k));
    yields.append(yield.getValues().begin() + n, yield.getValues().end());
    b.setInsertionPoint(yield);
    YieldOp::create(b, yield.getLoc(), yields);
    yield.erase();
    for (unsigned k = 0; k < n; ++k)
      scan.getResult(k).replaceAllUsesWith(saved.getResult(k));
    for (unsigned k = 0; k < m; ++k)
      scan.getResult(n + k).replaceAllUsesWith(saved.getResult(n + m + k));
    SmallVector<Value> states;
    for (unsigned k = 0; k < m; ++k)
      states.push_back(saved.getResult(n + k));
    savedStates[saved] = states;
    scan.erase();
  }

private:
  OpBuilder &b;

  /// The backward scan of `scan` (which saved its states), given the
  /// adjoints of its results.
  LogicalResult backpropScan(ScanOp scan, ArrayRef<Value> dys, Adjoints &adj) {
    Location loc = scan.getLoc();
    unsigned k = scan.getInputs().size(), m = scan.getInits().size();
    unsigned n = scan.getNumOutputs() - m; // without the saved states
    ArrayRef<Value> saved = savedStates[scan];
    Block &body = scan.getBodyBlock();

    // Values the body uses from outside: they get summed adjoints.
    llvm::SetVector<Value> captured;
    body.walk([&](Operation *op) {
      for (Value v : op->getOperands())
        if (isFloatTensor(v) && !scan.getBody().isAncestor(v.getParentRegion()))
          captured.insert(v);
    });

    // Backward inputs: the step inputs, saved states, output adjoints, mask.
    SmallVector<Value> inputs(scan.getInputs().begin(), scan.getInputs().end());
    inputs.append(saved.begin(), saved.end());
    for (unsigned j = 0; j < n; ++j)
      inputs.push_back(
          dys[j] ? dys[j]
                 : ZerosLikeOp::create(b, loc, scan.getResult(j)).getResult());
    Value mask;
    if (scan.getLengths()) {
      auto seq = cast<RankedTensorType>(scan.getInputs()[0].getType());
      auto maskType = RankedTensorType::get(
          {seq.getDimSize(0), seq.getDimSize(1)}, b.getF32Type());
      mask = LengthMaskOp::create(b, loc, maskType, scan.getLengths(),
                                  scan.getInputs()[0]);
      inputs.push_back(mask);
    }
    SmallVector<Value> inits;
    for (unsigned i = 0; i < m; ++i) {
      Value finalState = scan.getResult(n + m + i);
      Value d = dys[n + m + i];
      inits.push_back(d ? d
                        : ZerosLikeOp::create(b, loc, finalState).getResult());
    }
    for (Value c : captured)
      inits.push_back(ZerosLikeOp::create(b, loc, c));

    SmallVector<Type> types;
    for (Value x : scan.getInputs())
      types.push_back(x.getType());
    for (Value v : inits)
      types.push_back(v.getType());
    auto back = ScanOp::create(b, loc, types, inputs, inits, Value(),
                               !scan.getReverse());
    Block *bb = new Block();
    back.getBody().push_back(bb);
    auto stepType = [](Value seq) {
      auto t = cast<RankedTensorType>(seq.getType());
      return RankedTensorType::get(t.getShape().drop_front(),
                                   t.getElementType());
    };
    for (Value in : inputs)
      bb->addArgument(stepType(in), loc);
    for (Value v : inits)
      bb->addArgument(v.getType(), loc);

    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(bb);
    // Recompute the forward step from the saved state.
    IRMapping mapping;
    for (unsigned i = 0; i < k; ++i)
      mapping.map(body.getArgument(i), bb->getArgument(i));
    for (unsigned i = 0; i < m; ++i)
      mapping.map(body.getArgument(k + i), bb->getArgument(k + i));
    SmallVector<Operation *> cloned;
    for (Operation &op : body.without_terminator())
      cloned.push_back(b.clone(op, mapping));
    auto yield = cast<YieldOp>(body.getTerminator());

    Value stepMask = mask ? bb->getArgument(k + m + n) : Value();
    unsigned carry = k + m + n + (mask ? 1 : 0);
    auto masked = [&](Value g) -> Value {
      return stepMask ? ScaleRowsOp::create(b, loc, g.getType(), g, stepMask)
                            .getResult()
                      : g;
    };
    Adjoints local(b);
    for (unsigned j = 0; j < n; ++j)
      local.add(loc, mapping.lookupOrDefault(yield.getValues()[j]),
                masked(bb->getArgument(k + m + j)));
    for (unsigned i = 0; i < m; ++i)
      local.add(loc, mapping.lookupOrDefault(yield.getValues()[n + m + i]),
                masked(bb->getArgument(carry + i)));
    if (failed(backprop(cloned, local)))
      return failure();

    SmallVector<Value> yields;
    for (unsigned i = 0; i < k; ++i) {
      Value g = local.get(bb->getArgument(i));
      yields.push_back(
          g ? g : ZerosLikeOp::create(b, loc, bb->getArgument(i)).getResult());
    }
    for (unsigned i = 0; i < m; ++i) {
      Value dState = bb->getArgument(carry + i);
      Value g = local.get(bb->getArgument(k + i));
      if (!g)
        g = ZerosLikeOp::create(b, loc, dState);
      if (stepMask) {
        // Inactive rows pass their adjoint through, as their state did.
        auto one = RankedTensorType::get({}, b.getF32Type());
        Value c1 = arith::ConstantOp::create(b, loc, one,
                                             DenseElementsAttr::get(one, 1.0f));
        Value inactive =
            SubOp::create(b, loc, stepMask.getType(), c1, stepMask);
        Value through =
            ScaleRowsOp::create(b, loc, dState.getType(), dState, inactive);
        g = AddOp::create(b, loc, dState.getType(), g, through);
      }
      yields.push_back(g);
    }
    for (auto [j, c] : llvm::enumerate(captured)) {
      Value acc = bb->getArgument(carry + m + j);
      Value g = local.get(c);
      yields.push_back(
          g ? AddOp::create(b, loc, acc.getType(), acc, g).getResult() : acc);
    }
    YieldOp::create(b, loc, yields);

    b.setInsertionPointAfter(back);
    for (unsigned i = 0; i < k; ++i)
      adj.add(loc, scan.getInputs()[i], back.getResult(i));
    for (unsigned i = 0; i < m; ++i)
      adj.add(loc, scan.getInits()[i], back.getResult(k + i));
    for (auto [j, c] : llvm::enumerate(captured))
      adj.add(loc, c, back.getResult(k + m + j));
    return success();
  }
};

struct Differentiate : public loom::impl::LoomDifferentiateBase<Differentiate> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> losses;
    for (auto f : module.getOps<func::FuncOp>())
      if (f->hasAttr(kLossAttr))
        losses.push_back(f);
    for (func::FuncOp loss : losses)
      if (failed(differentiate(loss)))
        return signalPassFailure();
  }

  LogicalResult differentiate(func::FuncOp lossFn) {
    if (lossFn.getNumResults() < 1 ||
        cast<RankedTensorType>(lossFn.getResultTypes()[0]).getRank() != 0)
      return lossFn.emitOpError(
          "a loss function must return a scalar loss first");
    OpBuilder b(lossFn);
    b.setInsertionPointAfter(lossFn);
    auto grad = cast<func::FuncOp>(b.clone(*lossFn));
    StringRef base = lossFn.getName();
    base.consume_back("_loss");
    grad.setName((base + "_grad").str());
    grad->removeAttr(kLossAttr);
    grad->setAttr(kGradAttr, b.getUnitAttr());

    Block &entry = grad.getBody().front();
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    Differentiator d(b);
    SmallVector<ScanOp> scans(entry.getOps<ScanOp>());
    for (ScanOp s : scans)
      d.saveStates(s);
    SmallVector<Operation *> ops;
    for (Operation &op : entry.without_terminator())
      ops.push_back(&op);

    b.setInsertionPoint(ret);
    Location loc = ret.getLoc();
    Value lossValue = ret.getOperand(0);
    auto scalar = RankedTensorType::get({}, b.getF32Type());
    Adjoints adj(b);
    adj.add(loc, lossValue,
            arith::ConstantOp::create(b, loc, scalar,
                                      DenseElementsAttr::get(scalar, 1.0f)));
    if (failed(d.backprop(ops, adj)))
      return failure();

    // One gradient per parameter name, summed over tied uses.
    llvm::MapVector<StringRef, Value> grads;
    llvm::StringMap<Type> types;
    for (Operation *op : ops)
      if (auto p = dyn_cast<ParamOp>(op)) {
        types[p.getName()] = p.getType();
        Value g = adj.get(p.getResult());
        Value &slot = grads[p.getName()];
        if (g)
          slot = slot ? AddOp::create(b, loc, p.getType(), slot, g).getResult()
                      : g;
      }
    SmallVector<Value> results{lossValue};
    SmallVector<StringRef> names{"loss"};
    for (auto &[name, g] : grads) {
      Value v =
          g ? g
            : ZerosOp::create(b, loc, types[name], ValueRange{}).getResult();
      results.push_back(v);
      names.push_back(name);
    }
    // Carried states pass through, not differentiated (detached).
    unsigned firstCarry = results.size();
    for (unsigned k = 1; k < ret.getNumOperands(); ++k) {
      results.push_back(ret.getOperand(k));
      names.push_back(
          lossFn.getResultAttrOfType<StringAttr>(k, kNameAttr).getValue());
    }
    func::ReturnOp::create(b, loc, results);
    ret.erase();
    SmallVector<Type> resultTypes;
    for (Value v : results)
      resultTypes.push_back(v.getType());
    grad.setType(b.getFunctionType(grad.getArgumentTypes(), resultTypes));
    grad.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
    for (auto [i, name] : llvm::enumerate(names)) {
      grad.setResultAttr(i, kNameAttr, b.getStringAttr(name));
      if (i >= firstCarry)
        grad.setResultAttr(i, kCarryAttr, b.getUnitAttr());
    }
    return success();
  }
};

} // namespace
