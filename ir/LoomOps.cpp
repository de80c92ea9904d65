//===- LoomOps.cpp - verifiers of the loom ops ------------------------===//
//
// Shape rules of every loom op. Dynamic (`?`) sizes are compatible with any
// size; the runtime checks them against each other when the sizes are known.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace loom;

static bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Checks that `actual` has the shape `expected` (dims compatible, and the
/// same static-ness where `expected` is static).
static LogicalResult checkResultShape(Operation *op, RankedTensorType actual,
                                      ArrayRef<int64_t> expected) {
  if (actual.getRank() != static_cast<int64_t>(expected.size()))
    return op->emitOpError() << "result type " << actual << " should have rank "
                             << expected.size();
  for (auto [i, a, e] : llvm::enumerate(actual.getShape(), expected))
    if (!dimsCompatible(a, e))
      return op->emitOpError()
             << "result dimension " << i << " is " << a << " but should be "
             << e << " (result type " << actual << ")";
  return success();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  if (!getType().hasStaticShape())
    return emitOpError() << "parameter '" << getName()
                         << "' must have a static shape, got " << getType();
  return success();
}

LogicalResult ZerosOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  if (getSizes().size() != type.getNumDynamicDims())
    return emitOpError() << "expects " << type.getNumDynamicDims()
                         << " size operands for " << type << ", got "
                         << getSizes().size();
  return success();
}

LogicalResult LinearOp::verify() {
  auto x = cast<RankedTensorType>(getInput().getType());
  auto w = cast<RankedTensorType>(getWeight().getType());
  if (w.getRank() != 2)
    return emitOpError() << "weight must be a matrix [out, in], got " << w;
  if (x.getRank() < 1)
    return emitOpError("input must have rank at least 1");
  if (!dimsCompatible(x.getShape().back(), w.getDimSize(1)))
    return emitOpError() << "input feature size " << x.getShape().back()
                         << " does not match weight " << w
                         << " (expected [out, " << x.getShape().back() << "])";
  SmallVector<int64_t> expected(x.getShape().drop_back());
  expected.push_back(w.getDimSize(0));
  return checkResultShape(*this, cast<RankedTensorType>(getType()), expected);
}

/// Trailing-aligned broadcast of two shapes, or failure.
static LogicalResult broadcastShape(Operation *op, RankedTensorType a,
                                    RankedTensorType b,
                                    SmallVectorImpl<int64_t> &out) {
  bool aLonger = a.getRank() >= b.getRank();
  ArrayRef<int64_t> longer = aLonger ? a.getShape() : b.getShape();
  ArrayRef<int64_t> shorter = aLonger ? b.getShape() : a.getShape();
  out.assign(longer.begin(), longer.end());
  size_t off = longer.size() - shorter.size();
  for (size_t i = 0; i < shorter.size(); ++i) {
    int64_t l = longer[off + i], s = shorter[i];
    if (!dimsCompatible(l, s))
      return op->emitOpError()
             << "operand shapes do not broadcast: " << a << " and " << b
             << " (trailing dimensions must be equal)";
    if (ShapedType::isDynamic(l))
      out[off + i] = s;
  }
  return success();
}

#define LOOM_BINARY_VERIFIER(OP)                                               \
  LogicalResult OP::verify() {                                                 \
    SmallVector<int64_t> shape;                                                \
    if (failed(broadcastShape(                                                 \
            *this, cast<RankedTensorType>(getLhs().getType()),                 \
            cast<RankedTensorType>(getRhs().getType()), shape)))               \
      return failure();                                                        \
    return checkResultShape(*this, cast<RankedTensorType>(getType()), shape);  \
  }
LOOM_BINARY_VERIFIER(AddOp)
LOOM_BINARY_VERIFIER(SubOp)
LOOM_BINARY_VERIFIER(MulOp)
LOOM_BINARY_VERIFIER(DivOp)
LOOM_BINARY_VERIFIER(MinimumOp)
#undef LOOM_BINARY_VERIFIER

LogicalResult SplitOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  size_t parts = getResults().size();
  if (parts == 0)
    return emitOpError("must have at least one result");
  if (in.getRank() < 1)
    return emitOpError("input must have rank at least 1");
  int64_t last = in.getShape().back();
  if (ShapedType::isDynamic(last))
    return emitOpError("the split dimension must be static");
  if (last % static_cast<int64_t>(parts) != 0)
    return emitOpError() << "cannot split size " << last << " into " << parts
                         << " equal parts";
  SmallVector<int64_t> expected(in.getShape());
  expected.back() = last / static_cast<int64_t>(parts);
  for (Value r : getResults())
    if (failed(checkResultShape(*this, cast<RankedTensorType>(r.getType()),
                                expected)))
      return failure();
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  auto first = cast<RankedTensorType>(getInputs()[0].getType());
  if (first.getRank() < 1)
    return emitOpError("inputs must have rank at least 1");
  SmallVector<int64_t> expected(first.getShape());
  expected.back() = 0;
  for (Value v : getInputs()) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != first.getRank())
      return emitOpError() << "inputs must have the same rank, got " << first
                           << " and " << t;
    for (int64_t i = 0; i + 1 < t.getRank(); ++i) {
      if (!dimsCompatible(t.getDimSize(i), expected[i]))
        return emitOpError() << "inputs differ in dimension " << i << ": "
                             << first << " and " << t;
      if (ShapedType::isDynamic(expected[i]))
        expected[i] = t.getDimSize(i);
    }
    if (t.isDynamicDim(t.getRank() - 1))
      return emitOpError("the concatenated dimension must be static");
    expected.back() += t.getShape().back();
  }
  return checkResultShape(*this, cast<RankedTensorType>(getType()), expected);
}

LogicalResult StackOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  Type first = getInputs()[0].getType();
  for (Value v : getInputs())
    if (v.getType() != first)
      return emitOpError() << "inputs must all have the same type, got "
                           << first << " and " << v.getType();
  auto t = cast<RankedTensorType>(first);
  SmallVector<int64_t> expected{static_cast<int64_t>(getInputs().size())};
  expected.append(t.getShape().begin(), t.getShape().end());
  return checkResultShape(*this, cast<RankedTensorType>(getType()), expected);
}

LogicalResult IndexOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  if (in.getRank() < 1)
    return emitOpError("input must have rank at least 1");
  int64_t n = in.getDimSize(0);
  int64_t index = static_cast<int64_t>(getIndex());
  if (index < 0 || (!ShapedType::isDynamic(n) && index >= n))
    return emitOpError() << "index " << getIndex() << " is out of range for "
                         << in;
  return checkResultShape(*this, cast<RankedTensorType>(getType()),
                          in.getShape().drop_front());
}

LogicalResult TransposeOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  ArrayRef<int64_t> perm = getPermutation();
  if (static_cast<int64_t>(perm.size()) != in.getRank())
    return emitOpError() << "permutation has " << perm.size()
                         << " entries but the input has rank " << in.getRank();
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> expected;
  for (int64_t p : perm) {
    if (p < 0 || p >= in.getRank() || seen[p])
      return emitOpError("permutation must be a permutation of 0..rank-1");
    seen[p] = true;
    expected.push_back(in.getDimSize(p));
  }
  return checkResultShape(*this, cast<RankedTensorType>(getType()), expected);
}

LogicalResult EmbeddingOp::verify() {
  auto ids = cast<RankedTensorType>(getIds().getType());
  auto w = cast<RankedTensorType>(getWeight().getType());
  if (w.getRank() != 2)
    return emitOpError() << "weight must be a matrix [vocab, dim], got " << w;
  SmallVector<int64_t> expected(ids.getShape());
  expected.push_back(w.getDimSize(1));
  return checkResultShape(*this, cast<RankedTensorType>(getType()), expected);
}

LogicalResult LayerNormOp::verify() {
  auto x = cast<RankedTensorType>(getInput().getType());
  if (x.getRank() < 1)
    return emitOpError("input must have rank at least 1");
  int64_t f = x.getShape().back();
  for (Value v : {getWeight(), getBias()}) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != 1 || !dimsCompatible(t.getDimSize(0), f))
      return emitOpError() << "weight and bias must have shape [" << f
                           << "], got " << t;
  }
  if (getEpsilon().convertToFloat() <= 0.0f)
    return emitOpError("epsilon must be positive");
  return checkResultShape(*this, cast<RankedTensorType>(getType()),
                          x.getShape());
}

LogicalResult DropoutOp::verify() {
  float p = getP().convertToFloat();
  if (!(p >= 0.0f && p < 1.0f))
    return emitOpError() << "probability must be in [0, 1), got " << p;
  if (Value key = getKey()) {
    auto t = cast<RankedTensorType>(key.getType());
    if (t.getDimSize(0) != 2)
      return emitOpError() << "key must be tensor<2xi64> ([seed, step]), got "
                           << t;
  }
  if (int64_t stream = getStreamAttr().getInt(); stream < 0)
    return emitOpError() << "stream must be non-negative, got " << stream;
  return success();
}

LogicalResult ScanOp::verifyRegions() {
  Block &body = getBodyBlock();
  size_t numInputs = getInputs().size(), numStates = getInits().size();
  if (getInputs().empty())
    return emitOpError("needs at least one input sequence");
  if (getNumResults() < numStates)
    return emitOpError() << "has " << getNumResults()
                         << " results but needs at least one per state ("
                         << numStates << ")";
  if (body.getNumArguments() != numInputs + numStates)
    return emitOpError() << "body must take " << numInputs + numStates
                         << " arguments (one step slice per input, then the "
                            "states), got "
                         << body.getNumArguments();
  int64_t t = ShapedType::kDynamic;
  for (auto [i, v] : llvm::enumerate(getInputs())) {
    auto seq = cast<RankedTensorType>(v.getType());
    if (seq.getRank() < 2)
      return emitOpError() << "input " << i
                           << " must be a sequence [T, B, ...], got " << seq;
    if (!dimsCompatible(t, seq.getDimSize(0)))
      return emitOpError("input sequences have different lengths");
    if (!seq.isDynamicDim(0))
      t = seq.getDimSize(0);
    auto step = RankedTensorType::get(seq.getShape().drop_front(),
                                      seq.getElementType());
    if (body.getArgument(i).getType() != step)
      return emitOpError() << "body argument " << i
                           << " must be the step slice " << step << " of input "
                           << seq << ", got " << body.getArgument(i).getType();
  }
  for (auto [i, v] : llvm::enumerate(getInits()))
    if (body.getArgument(numInputs + i).getType() != v.getType())
      return emitOpError() << "body argument " << numInputs + i
                           << " must have the type of state " << i << " ("
                           << v.getType() << "), got "
                           << body.getArgument(numInputs + i).getType();
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield)
    return emitOpError("body must end with loom.yield");
  if (yield.getValues().size() != getNumResults())
    return yield.emitOpError()
           << "yields " << yield.getValues().size()
           << " values but the scan has " << getNumResults() << " results ("
           << getNumOutputs() << " outputs, then " << numStates << " states)";
  unsigned numOutputs = getNumOutputs();
  for (unsigned i = 0; i < numOutputs; ++i) {
    auto out = dyn_cast<RankedTensorType>(yield.getValues()[i].getType());
    if (!out)
      return yield.emitOpError()
             << "output " << i << " must be a ranked tensor";
    SmallVector<int64_t> expected{t};
    expected.append(out.getShape().begin(), out.getShape().end());
    auto res = cast<RankedTensorType>(getResult(i).getType());
    bool same = res.getElementType() == out.getElementType() &&
                res.getRank() == static_cast<int64_t>(expected.size());
    for (int64_t d = 0; same && d < res.getRank(); ++d)
      same = dimsCompatible(res.getDimSize(d), expected[d]);
    if (!same)
      return emitOpError() << "result " << i << " must stack output " << out
                           << " over time, got " << res;
  }
  for (unsigned i = 0; i < numStates; ++i) {
    Type init = getInits()[i].getType();
    if (yield.getValues()[numOutputs + i].getType() != init)
      return yield.emitOpError() << "new state " << i << " has type "
                                 << yield.getValues()[numOutputs + i].getType()
                                 << " but the state has type " << init;
    if (getResult(numOutputs + i).getType() != init)
      return emitOpError() << "final state result " << numOutputs + i
                           << " must have the state type " << init;
  }
  if (getLengths()) {
    auto len = cast<RankedTensorType>(getLengths().getType());
    if (len.getRank() != 1)
      return emitOpError() << "lengths must be a vector [B], got " << len;
  }
  return success();
}

/// Targets have the shape of the class scores without the class dimension.
static LogicalResult verifyClassTargets(Operation *op, Value scores,
                                        Value targetsValue, StringRef what) {
  auto logits = cast<RankedTensorType>(scores.getType());
  auto targets = cast<RankedTensorType>(targetsValue.getType());
  if (logits.getRank() < 1 || logits.isDynamicDim(logits.getRank() - 1))
    return op->emitOpError()
           << what << " must end in a static class dimension, got " << logits;
  bool ok = targets.getRank() + 1 == logits.getRank();
  for (int64_t d = 0; ok && d < targets.getRank(); ++d)
    ok = dimsCompatible(targets.getDimSize(d), logits.getDimSize(d));
  if (!ok)
    return op->emitOpError()
           << "targets " << targets << " must have the shape of the " << what
           << " " << logits << " without the class dimension";
  return success();
}

LogicalResult CrossEntropyOp::verify() {
  return verifyClassTargets(*this, getLogits(), getTargets(), "logits");
}

LogicalResult NllOp::verify() {
  return verifyClassTargets(*this, getLogp(), getTargets(),
                            "log-probabilities");
}

LogicalResult NllGradOp::verify() {
  if (getType() != getLogp().getType())
    return emitOpError("result must have the type of the log-probabilities");
  return verifyClassTargets(*this, getLogp(), getTargets(),
                            "log-probabilities");
}

LogicalResult CrossEntropyGradOp::verify() {
  if (getType() != getLogits().getType())
    return emitOpError("result must have the type of the logits");
  auto targets = cast<RankedTensorType>(getTargets().getType());
  auto logits = cast<RankedTensorType>(getLogits().getType());
  if (targets.getRank() + 1 != logits.getRank())
    return emitOpError() << "targets " << targets
                         << " must have one dimension less than the logits "
                         << logits;
  return success();
}

LogicalResult ReduceSumOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getType());
  if (out.getRank() > in.getRank())
    return emitOpError() << "cannot reduce " << in << " to the larger rank of "
                         << out;
  int64_t off = in.getRank() - out.getRank();
  for (int64_t d = 0; d < out.getRank(); ++d)
    if (!dimsCompatible(in.getDimSize(off + d), out.getDimSize(d)))
      return emitOpError() << "result " << out
                           << " must be the trailing dimensions of " << in;
  return success();
}

LogicalResult LinearWeightGradOp::verify() {
  auto dy = cast<RankedTensorType>(getOutputGrad().getType());
  auto x = cast<RankedTensorType>(getInput().getType());
  auto w = cast<RankedTensorType>(getType());
  if (dy.getRank() != x.getRank() || dy.getRank() < 1)
    return emitOpError() << "output gradient " << dy << " and input " << x
                         << " must have the same rank";
  if (w.getRank() != 2 ||
      !dimsCompatible(w.getDimSize(0), dy.getShape().back()) ||
      !dimsCompatible(w.getDimSize(1), x.getShape().back()))
    return emitOpError() << "result must be [" << dy.getShape().back() << ", "
                         << x.getShape().back() << "], got " << w;
  return success();
}

LogicalResult EmbeddingGradOp::verify() {
  auto ids = cast<RankedTensorType>(getIds().getType());
  auto dy = cast<RankedTensorType>(getOutputGrad().getType());
  auto w = cast<RankedTensorType>(getType());
  if (dy.getRank() != ids.getRank() + 1)
    return emitOpError() << "output gradient " << dy
                         << " must have one dimension more than the ids "
                         << ids;
  if (w.getRank() != 2 || !w.hasStaticShape() ||
      !dimsCompatible(w.getDimSize(1), dy.getShape().back()))
    return emitOpError() << "result must be a static [vocab, "
                         << dy.getShape().back() << "] table, got " << w;
  return success();
}

LogicalResult SliceOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getType());
  if (in.getRank() < 1 || out.getRank() != in.getRank())
    return emitOpError(
        "input and result must have the same rank of at least 1");
  int64_t size = out.getShape().back(), total = in.getShape().back();
  int64_t offset = static_cast<int64_t>(getOffset());
  if (ShapedType::isDynamic(size) || ShapedType::isDynamic(total) ||
      offset < 0 || offset + size > total)
    return emitOpError() << "slice [" << offset << ", " << offset << " + "
                         << size << ") is outside the last dimension of " << in;
  for (int64_t d = 0; d + 1 < in.getRank(); ++d)
    if (!dimsCompatible(in.getDimSize(d), out.getDimSize(d)))
      return emitOpError("leading dimensions must match");
  return success();
}

LogicalResult LengthMaskOp::verify() {
  auto len = cast<RankedTensorType>(getLengths().getType());
  auto seq = cast<RankedTensorType>(getSequence().getType());
  auto out = cast<RankedTensorType>(getType());
  if (len.getRank() != 1 || seq.getRank() < 2)
    return emitOpError("needs lengths [B] and a sequence [T, B, ...]");
  if (out.getRank() != 2 ||
      !dimsCompatible(out.getDimSize(0), seq.getDimSize(0)) ||
      !dimsCompatible(out.getDimSize(1), seq.getDimSize(1)))
    return emitOpError() << "result must be [T, B], got " << out;
  return success();
}

LogicalResult ScaleRowsOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto f = cast<RankedTensorType>(getFactors().getType());
  if (in.getRank() < 1 || f.getRank() != 1 ||
      !dimsCompatible(in.getDimSize(0), f.getDimSize(0)))
    return emitOpError() << "factors " << f
                         << " must have one entry per row of " << in;
  return success();
}

#include "ir/LoomInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "ir/LoomOps.cpp.inc"
