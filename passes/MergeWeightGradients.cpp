//===- MergeWeightGradients.cpp - one weight-gradient matmul per scan -===//
//
// The backward scan that loom-differentiate builds accumulates the gradient
// of each weight the step captures: `acc' = acc + linear_weight_grad(dy_t,
// x_t)`, a [G, B] × [B, H] product per step that reads and writes the
// whole [G, H] accumulator. This pass turns such a state into per-step
// outputs (dy_t and x_t stacked over time) and one linear_weight_grad over
// all T·B rows after the scan, added to the state's initial value.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"

namespace loom {
#define GEN_PASS_DEF_LOOMMERGEWEIGHTGRADIENTS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;
using namespace loom;

namespace {

/// One mergeable state of a scan.
struct Term {
  unsigned state;          // index among the scan's states
  LinearWeightGradOp grad; // linear_weight_grad(dy_t, x_t) in the body
  AddOp add;               // acc + grad, yielded as the new state
};

struct MergeWeightGradients
    : public loom::impl::LoomMergeWeightGradientsBase<MergeWeightGradients> {
  void runOnOperation() override {
    SmallVector<ScanOp> scans;
    getOperation().walk([&](ScanOp s) { scans.push_back(s); });
    for (ScanOp s : scans)
      merge(s);
  }

  /// Whether `v` is a step slice of one of `scan`'s input sequences.
  static bool isInputSlice(ScanOp scan, Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner() == &scan.getBodyBlock() &&
           arg.getArgNumber() < scan.getInputs().size();
  }

  /// Whether `v` is computed by the step (or is one of its arguments), so
  /// that it can be output per step.
  static bool isStepValue(ScanOp scan, Value v) {
    return v.getParentRegion() == &scan.getBody();
  }

  SmallVector<Term> findTerms(ScanOp scan) {
    Block &body = scan.getBodyBlock();
    auto yield = cast<YieldOp>(body.getTerminator());
    unsigned numInputs = scan.getInputs().size();
    unsigned numOutputs = scan.getNumOutputs();
    SmallVector<Term> terms;
    for (unsigned k = 0; k < scan.getInits().size(); ++k) {
      BlockArgument acc = body.getArgument(numInputs + k);
      auto add = yield.getValues()[numOutputs + k].getDefiningOp<AddOp>();
      if (!add || !acc.hasOneUse() || !add->hasOneUse() ||
          acc.getType() != add.getType())
        continue;
      Value other = add.getLhs() == acc   ? add.getRhs()
                    : add.getRhs() == acc ? add.getLhs()
                                          : Value();
      auto grad = other ? other.getDefiningOp<LinearWeightGradOp>() : nullptr;
      if (!grad || !grad->hasOneUse() || grad.getType() != add.getType())
        continue;
      Value dy = grad.getOutputGrad(), x = grad.getInput();
      if (!isStepValue(scan, dy) || !isStepValue(scan, x))
        continue;
      // With lengths, inactive steps must contribute 0: at least one factor
      // must be an output (zeroed there), not an input slice.
      if (scan.getLengths() && isInputSlice(scan, dy) && isInputSlice(scan, x))
        continue;
      terms.push_back({k, grad, add});
    }
    return terms;
  }

  void merge(ScanOp scan) {
    SmallVector<Term> terms = findTerms(scan);
    if (terms.empty())
      return;
    Block &body = scan.getBodyBlock();
    auto yield = cast<YieldOp>(body.getTerminator());
    unsigned numInputs = scan.getInputs().size();
    unsigned numOutputs = scan.getNumOutputs();
    unsigned numStates = scan.getInits().size();

    // The step values to output, reusing outputs that already exist.
    SmallVector<Value> outputs(yield.getValues().begin(),
                               yield.getValues().begin() + numOutputs);
    // Where each factor's sequence comes from: an input (k) or an output.
    struct Source {
      bool input;
      unsigned index;
    };
    auto sourceOf = [&](Value v) -> Source {
      if (isInputSlice(scan, v))
        return {true, cast<BlockArgument>(v).getArgNumber()};
      for (unsigned k = 0; k < outputs.size(); ++k)
        if (outputs[k] == v)
          return {false, k};
      outputs.push_back(v);
      return {false, unsigned(outputs.size() - 1)};
    };
    SmallVector<std::pair<Source, Source>> factors;
    for (Term &t : terms)
      factors.push_back(
          {sourceOf(t.grad.getOutputGrad()), sourceOf(t.grad.getInput())});

    // The new scan: the merged states pass through unchanged (their
    // accumulation moves after the scan).
    SmallVector<Value> states(yield.getValues().begin() + numOutputs,
                              yield.getValues().end());
    for (Term &t : terms)
      states[t.state] = body.getArgument(numInputs + t.state);
    SmallVector<Type> types;
    for (unsigned k = 0; k < outputs.size(); ++k) {
      if (k < numOutputs) {
        types.push_back(scan.getResult(k).getType());
        continue;
      }
      auto st = cast<RankedTensorType>(outputs[k].getType());
      SmallVector<int64_t> shape{
          cast<RankedTensorType>(scan.getInputs()[0].getType()).getDimSize(0)};
      shape.append(st.getShape().begin(), st.getShape().end());
      types.push_back(RankedTensorType::get(shape, st.getElementType()));
    }
    for (unsigned k = 0; k < numStates; ++k)
      types.push_back(scan.getResult(numOutputs + k).getType());
    OpBuilder b(scan);
    auto merged =
        ScanOp::create(b, scan.getLoc(), types, scan.getInputs(),
                       scan.getInits(), scan.getLengths(), scan.getReverse());
    merged->setDiscardableAttrs(scan->getDiscardableAttrDictionary());
    merged.getBody().takeBody(scan.getBody());
    SmallVector<Value> yields(outputs);
    yields.append(states);
    b.setInsertionPoint(yield);
    YieldOp::create(b, yield.getLoc(), yields);
    yield.erase();
    SmallVector<Location> locs;
    for (Term &t : terms) {
      locs.push_back(t.grad.getLoc());
      t.add.erase();
      t.grad.erase();
    }

    unsigned newOutputs = outputs.size();
    for (unsigned k = 0; k < numOutputs; ++k)
      scan.getResult(k).replaceAllUsesWith(merged.getResult(k));
    for (unsigned k = 0; k < numStates; ++k)
      scan.getResult(numOutputs + k)
          .replaceAllUsesWith(merged.getResult(newOutputs + k));
    // After the scan: init + Σ_t dy_t^T x_t as one matmul.
    b.setInsertionPointAfter(merged);
    for (auto [t, f, loc] : llvm::zip(terms, factors, locs)) {
      auto seq = [&](Source s) -> Value {
        return s.input ? merged.getInputs()[s.index]
                       : merged.getResult(s.index);
      };
      Value init = merged.getInits()[t.state];
      Value all = LinearWeightGradOp::create(b, loc, init.getType(),
                                             seq(f.first), seq(f.second));
      Value sum = AddOp::create(b, loc, init.getType(), init, all);
      Value result = merged.getResult(newOutputs + t.state);
      result.replaceAllUsesExcept(sum, sum.getDefiningOp());
      emitRemark(loc) << "per-step weight gradient "
                      << cast<RankedTensorType>(init.getType())
                      << " merged into one matmul over all steps after the "
                         "scan (loom-merge-weight-gradients)";
    }
    scan.erase();
  }
};

} // namespace
