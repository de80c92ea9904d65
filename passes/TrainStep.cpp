//===- TrainStep.cpp - the training step: clipping and the optimizer ---===//
//
// `<M>_grad` → `<M>_step`: after the gradients, the L1 penalty,
// clip_grad_norm_ and one update of torch.optim.SGD, Adam or AdamW, written
// with loom ops so that the whole step is compiled like the model. The
// optimizer's state tensors are loom.params named `optimizer.<param>.<slot>`
// and its numbers are named rank-0 arguments (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace loom {
#define GEN_PASS_DEF_LOOMTRAINSTEP
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Builds elementwise loom ops; a rank-0 operand broadcasts.
struct Ops {
  OpBuilder &b;
  Location loc;
  Type longer(Value x, Value y) {
    return typeOf(x).getRank() >= typeOf(y).getRank() ? x.getType()
                                                      : y.getType();
  }
  Value add(Value x, Value y) {
    return AddOp::create(b, loc, longer(x, y), x, y);
  }
  Value sub(Value x, Value y) {
    return SubOp::create(b, loc, longer(x, y), x, y);
  }
  Value mul(Value x, Value y) {
    return MulOp::create(b, loc, longer(x, y), x, y);
  }
  Value div(Value x, Value y) {
    return DivOp::create(b, loc, longer(x, y), x, y);
  }
  Value min(Value x, Value y) {
    return MinimumOp::create(b, loc, longer(x, y), x, y);
  }
  Value sqrt(Value x) { return SqrtOp::create(b, loc, x); }
  Value constant(float v) {
    auto t = RankedTensorType::get({}, b.getF32Type());
    return arith::ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, v));
  }
  /// Σ of every element, as a rank-0 tensor.
  Value total(Value x) {
    return ReduceSumOp::create(b, loc,
                               RankedTensorType::get({}, b.getF32Type()), x);
  }
};

struct TrainStep : public loom::impl::LoomTrainStepBase<TrainStep> {
  using LoomTrainStepBase::LoomTrainStepBase;

  void runOnOperation() override {
    if (optimizer != "sgd" && optimizer != "adam" && optimizer != "adamw") {
      getOperation().emitError("loom-train-step: unknown optimizer '")
          << optimizer << "' (expected sgd, adam or adamw)";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> grads;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (f->hasAttr(kGradAttr))
        grads.push_back(f);
    for (func::FuncOp g : grads)
      if (failed(build(g)))
        return signalPassFailure();
  }

  LogicalResult build(func::FuncOp gradFn) {
    OpBuilder b(gradFn);
    b.setInsertionPointAfter(gradFn);
    auto step = cast<func::FuncOp>(b.clone(*gradFn));
    StringRef base = gradFn.getName();
    base.consume_back("_grad");
    step.setName((base + "_step").str());
    step->removeAttr(kGradAttr);
    step->setAttr(kStepAttr, b.getUnitAttr());

    Block &entry = step.getBody().front();
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    b.setInsertionPoint(ret);
    Ops o{b, ret.getLoc()};

    // The gradient function's results: loss, gradients, carried states.
    SmallVector<std::pair<StringRef, Value>> grads, carries;
    for (unsigned k = 1; k < ret.getNumOperands(); ++k) {
      StringRef name =
          gradFn.getResultAttrOfType<StringAttr>(k, kNameAttr).getValue();
      (gradFn.getResultAttr(k, kCarryAttr) ? carries : grads)
          .push_back({name, ret.getOperand(k)});
    }
    llvm::StringMap<Value> paramOf;
    for (auto p : entry.getOps<ParamOp>())
      paramOf.try_emplace(p.getName(), p.getResult());

    // The optimizer's numbers: named rank-0 arguments.
    auto scalarType = RankedTensorType::get({}, b.getF32Type());
    llvm::StringMap<Value> scalars;
    auto scalar = [&](StringRef name) {
      Value &slot = scalars[name];
      if (!slot) {
        unsigned k = step.getNumArguments();
        if (failed(step.insertArgument(k, scalarType, {}, o.loc)))
          return Value();
        step.setArgAttr(k, kNameAttr, b.getStringAttr(name));
        step.setArgAttr(k, kDimsAttr, b.getArrayAttr({}));
        slot = step.getArgument(k);
      }
      return slot;
    };
    auto state = [&](StringRef param, StringRef slot, Type type) {
      return ParamOp::create(
                 b, o.loc, type,
                 b.getStringAttr(("optimizer." + param + "." + slot).str()))
          .getResult();
    };

    Value loss = ret.getOperand(0);
    if (l1) {
      // loss + l1·Σ|p|; its gradient l1·sign(p).
      Value penalty;
      for (auto &[name, g] : grads) {
        Value p = paramOf.lookup(name);
        Value s = o.total(AbsOp::create(b, o.loc, p));
        penalty = penalty ? o.add(penalty, s) : s;
        g = o.add(g, o.mul(scalar("l1"), SignOp::create(b, o.loc, p)));
      }
      if (penalty)
        loss = o.add(loss, o.mul(scalar("l1"), penalty));
    }
    SmallVector<Value> results{loss};
    SmallVector<std::string> names{"loss"};
    if (clip) {
      // torch.nn.utils.clip_grad_norm_: the global L2 norm, and every
      // gradient times min(max_norm / (norm + 1e-6), 1).
      Value sq;
      for (auto &[name, g] : grads) {
        Value s = o.total(o.mul(g, g));
        sq = sq ? o.add(sq, s) : s;
      }
      Value norm = sq ? o.sqrt(sq) : o.constant(0.0f);
      Value coef =
          o.min(o.div(scalar("max_norm"), o.add(norm, o.constant(1e-6f))),
                o.constant(1.0f));
      for (auto &[name, g] : grads)
        g = o.mul(g, coef);
      results.push_back(norm);
      names.push_back("grad_norm");
    }

    SmallVector<std::pair<std::string, Value>> newParams, newStates;
    for (auto &[name, g] : grads) {
      Value p = paramOf.lookup(name);
      Type type = p.getType();
      Value d = g;
      if (weightDecay && optimizer != "adamw")
        d = o.add(d, o.mul(scalar("weight_decay"), p));
      if (optimizer == "sgd") {
        if (momentum) {
          Value buf = state(name, "momentum_buffer", type);
          buf = o.add(o.mul(buf, scalar("momentum_decay")),
                      o.mul(d, scalar("momentum_scale")));
          newStates.push_back(
              {("optimizer." + name + ".momentum_buffer").str(), buf});
          d = nesterov ? o.add(d, o.mul(buf, scalar("momentum"))) : buf;
        }
        newParams.push_back({name.str(), o.sub(p, o.mul(scalar("lr"), d))});
        continue;
      }
      if (optimizer == "adamw" && weightDecay)
        p = o.mul(p, scalar("decay"));
      Value m = state(name, "exp_avg", type);
      Value v = state(name, "exp_avg_sq", type);
      m = o.add(o.mul(m, scalar("beta1")), o.mul(d, scalar("one_minus_beta1")));
      v = o.add(o.mul(v, scalar("beta2")),
                o.mul(o.mul(d, scalar("one_minus_beta2")), d));
      Value denom = o.add(o.div(o.sqrt(v), scalar("bias_correction2_sqrt")),
                          scalar("eps"));
      newStates.push_back({("optimizer." + name + ".exp_avg").str(), m});
      newStates.push_back({("optimizer." + name + ".exp_avg_sq").str(), v});
      newParams.push_back(
          {name.str(), o.sub(p, o.mul(scalar("step_size"), o.div(m, denom)))});
    }
    if (llvm::any_of(scalars, [](const auto &e) { return !e.second; }))
      return step.emitOpError("could not add the optimizer's arguments");
    for (auto &[name, v] : newParams) {
      results.push_back(v);
      names.push_back(name);
    }
    for (auto &[name, v] : newStates) {
      results.push_back(v);
      names.push_back(name);
    }
    unsigned firstCarry = results.size();
    for (auto &[name, v] : carries) {
      results.push_back(v);
      names.push_back(name.str());
    }
    func::ReturnOp::create(b, o.loc, results);
    ret.erase();
    SmallVector<Type> types;
    for (Value v : results)
      types.push_back(v.getType());
    step.setType(b.getFunctionType(step.getArgumentTypes(), types));
    step.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
    for (auto [i, name] : llvm::enumerate(names)) {
      step.setResultAttr(i, kNameAttr, b.getStringAttr(name));
      if (i >= firstCarry)
        step.setResultAttr(i, kCarryAttr, b.getUnitAttr());
    }
    return success();
  }
};

} // namespace
