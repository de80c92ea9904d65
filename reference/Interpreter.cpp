//===- Interpreter.cpp - reference interpreter of the loom dialect ----===//
//
// One function per op, written from the op's documented semantics with
// plain loops. Matrix products and reductions accumulate in double so that
// the oracle is at least as accurate as anything it checks.
//
//===----------------------------------------------------------------------===//

#include "reference/Interpreter.h"

#include "ir/LoomOps.h"
#include "ir/Philox.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <unordered_map>

using namespace loom;
using namespace loom::reference;

int64_t Array::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Array Array::floats(std::vector<int64_t> shape) {
  Array a;
  a.shape = std::move(shape);
  a.f.assign(a.numElements(), 0.0f);
  return a;
}

std::string Array::shapeString() const {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k)
    s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

namespace {

struct Failure {};

class Evaluator {
public:
  Evaluator(const ParamMap &params, std::string &error)
      : params(params), error(error) {}

  bool fail(mlir::Operation *op, const std::string &msg) {
    if (error.empty()) {
      error = msg;
      if (op) {
        std::string l;
        llvm::raw_string_ostream os(l);
        op->getLoc().print(os);
        error += " (at " + l + ")";
      }
    }
    return false;
  }

  /// Evaluates the ops of `block` up to its terminator; returns the
  /// terminator's operands' values.
  bool evalBlock(mlir::Block &block, std::vector<Array> &results) {
    for (mlir::Operation &op : block) {
      if (op.hasTrait<mlir::OpTrait::IsTerminator>()) {
        results.clear();
        for (mlir::Value v : op.getOperands())
          results.push_back(get(v));
        return true;
      }
      if (!evalOp(&op))
        return false;
    }
    return fail(nullptr, "block without terminator");
  }

  /// Values by SSA value. Node-based so that references to arrays stay
  /// valid while results are added.
  std::unordered_map<const void *, Array> env;
  llvm::DenseMap<mlir::Value, int64_t> indices;

private:
  const ParamMap &params;
  std::string &error;

  const Array &get(mlir::Value v) { return env[v.getAsOpaquePointer()]; }
  void set(mlir::Value v, Array a) {
    env[v.getAsOpaquePointer()] = std::move(a);
  }

  /// Checks that the runtime shape matches the static dims of the type.
  bool checkType(mlir::Operation *op, mlir::Value v, const Array &a) {
    auto t = mlir::cast<mlir::RankedTensorType>(v.getType());
    bool ok = t.getRank() == static_cast<int64_t>(a.shape.size());
    for (int64_t d = 0; ok && d < t.getRank(); ++d)
      ok = t.isDynamicDim(d) || t.getDimSize(d) == a.shape[d];
    if (!ok) {
      std::string ts;
      llvm::raw_string_ostream os(ts);
      os << t;
      return fail(op, "value of shape " + a.shapeString() +
                          " does not fit type " + ts);
    }
    return true;
  }

  bool evalOp(mlir::Operation *op) {
    return llvm::TypeSwitch<mlir::Operation *, bool>(op)
        .Case([&](ParamOp p) {
          auto it = params.find(p.getName().str());
          if (it == params.end())
            return fail(op, "missing parameter '" + p.getName().str() + "'");
          if (!checkType(op, p.getResult(), it->second))
            return false;
          set(p.getResult(), it->second);
          return true;
        })
        .Case([&](mlir::arith::ConstantOp c) {
          if (mlir::isa<mlir::IndexType>(c.getType())) {
            indices[c.getResult()] =
                mlir::cast<mlir::IntegerAttr>(c.getValue()).getInt();
            return true;
          }
          auto dense = mlir::dyn_cast<mlir::DenseElementsAttr>(c.getValue());
          auto type = mlir::dyn_cast<mlir::RankedTensorType>(c.getType());
          if (!dense || !type || !type.getElementType().isF32())
            return fail(op, "unsupported constant");
          Array a = Array::floats(std::vector<int64_t>(type.getShape().begin(),
                                                       type.getShape().end()));
          auto values = dense.getValues<float>();
          for (int64_t k = 0; k < a.numElements(); ++k)
            a.f[k] = values[k];
          set(c.getResult(), std::move(a));
          return true;
        })
        .Case([&](mlir::tensor::DimOp d) {
          const Array &a = get(d.getSource());
          int64_t k = indices.lookup(d.getIndex());
          if (k < 0 || k >= static_cast<int64_t>(a.shape.size()))
            return fail(op, "dimension index out of range");
          indices[d.getResult()] = a.shape[k];
          return true;
        })
        .Case([&](ZerosOp z) {
          auto t = mlir::cast<mlir::RankedTensorType>(z.getType());
          std::vector<int64_t> shape;
          size_t next = 0;
          for (int64_t d = 0; d < t.getRank(); ++d)
            shape.push_back(t.isDynamicDim(d)
                                ? indices.lookup(z.getSizes()[next++])
                                : t.getDimSize(d));
          set(z.getResult(), Array::floats(shape));
          return true;
        })
        .Case([&](LinearOp l) { return evalLinear(l); })
        .Case([&](AddOp b) {
          return evalBinary(op, [](float x, float y) { return x + y; });
        })
        .Case([&](SubOp b) {
          return evalBinary(op, [](float x, float y) { return x - y; });
        })
        .Case([&](MulOp b) {
          return evalBinary(op, [](float x, float y) { return x * y; });
        })
        .Case([&](DivOp b) {
          return evalBinary(op, [](float x, float y) { return x / y; });
        })
        .Case([&](SigmoidOp u) {
          return evalUnary(op, [](float x) {
            return static_cast<float>(1.0 / (1.0 + std::exp(-double(x))));
          });
        })
        .Case([&](TanhOp u) {
          return evalUnary(op, [](float x) { return std::tanh(x); });
        })
        .Case([&](ReluOp u) {
          return evalUnary(op, [](float x) { return x > 0 ? x : 0.0f; });
        })
        .Case([&](ExpOp u) {
          return evalUnary(op, [](float x) { return std::exp(x); });
        })
        .Case(
            [&](NegOp u) { return evalUnary(op, [](float x) { return -x; }); })
        .Case([&](RsqrtOp u) {
          return evalUnary(op, [](float x) {
            return static_cast<float>(1.0 / std::sqrt(double(x)));
          });
        })
        .Case([&](SqrtOp u) {
          return evalUnary(op, [](float x) { return std::sqrt(x); });
        })
        .Case([&](AbsOp u) {
          return evalUnary(op, [](float x) { return std::fabs(x); });
        })
        .Case([&](SignOp u) {
          return evalUnary(op, [](float x) {
            return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
          });
        })
        .Case([&](MinimumOp b) {
          return evalBinary(op, [](float x, float y) {
            return std::isnan(x) || std::isnan(y) ? NAN : std::min(x, y);
          });
        })
        .Case([&](DropoutOp d) {
          Array out = get(d.getInput());
          if (d.getKey()) {
            const Array &key = get(d.getKey());
            int64_t seed = key.i[0], step = key.i[1];
            float p = d.getP().convertToFloat();
            float scale = 1.0f / (1.0f - p);
            if (seed >= 0)
              for (int64_t n = 0; n < out.numElements(); ++n)
                out.f[n] = philox::keep(seed, step, d.getStream(), n, p)
                               ? out.f[n] * scale
                               : 0.0f;
          }
          set(d.getResult(), std::move(out));
          return true;
        })
        .Case([&](SplitOp s) { return evalSplit(s); })
        .Case([&](ConcatOp c) { return evalConcat(c); })
        .Case([&](StackOp s) { return evalStack(s); })
        .Case([&](IndexOp i) { return evalIndex(i); })
        .Case([&](TransposeOp t) { return evalTranspose(t); })
        .Case([&](EmbeddingOp e) { return evalEmbedding(e); })
        .Case([&](LayerNormOp l) { return evalLayerNorm(l); })
        .Case([&](SoftmaxOp s) { return evalSoftmax(op, false); })
        .Case([&](LogSoftmaxOp s) { return evalSoftmax(op, true); })
        .Case([&](ScanOp s) { return evalScan(s); })
        .Case([&](CrossEntropyOp c) { return evalCrossEntropy(c); })
        .Case([&](NllOp n) {
          const Array &logp = get(n.getLogp());
          const Array &targets = get(n.getTargets());
          int64_t C = logp.shape.back(), rows = logp.numElements() / C;
          int64_t ignore = n.getIgnoreIndexAttr().getInt(), count = 0;
          double total = 0;
          for (int64_t r = 0; r < rows; ++r) {
            int64_t t = targets.i[r];
            if (t == ignore)
              continue;
            if (t < 0 || t >= C)
              return fail(op, "target " + std::to_string(t) +
                                  " is outside [0, " + std::to_string(C) + ")");
            total -= logp.f[r * C + t];
            ++count;
          }
          Array out = Array::floats({});
          out.f[0] = static_cast<float>(total / count);
          set(n.getResult(), std::move(out));
          return true;
        })
        .Case([&](NllGradOp n) {
          const Array &logp = get(n.getLogp());
          const Array &targets = get(n.getTargets());
          float d = get(n.getDloss()).f[0];
          int64_t C = logp.shape.back(), rows = logp.numElements() / C;
          int64_t ignore = n.getIgnoreIndexAttr().getInt(), count = 0;
          for (int64_t r = 0; r < rows; ++r)
            count += targets.i[r] != ignore;
          Array out = Array::floats(logp.shape);
          for (int64_t r = 0; r < rows; ++r)
            if (targets.i[r] != ignore)
              out.f[r * C + targets.i[r]] = -d / count;
          set(n.getResult(), std::move(out));
          return true;
        })
        .Case([&](MeanOp m) {
          const Array &a = get(m.getInput());
          double sum = 0;
          for (float v : a.f)
            sum += v;
          Array out = Array::floats({});
          out.f[0] = static_cast<float>(sum / a.numElements());
          set(m.getResult(), std::move(out));
          return true;
        })
        .Case([&](MeanGradOp m) {
          Array out = Array::floats(get(m.getInput()).shape);
          float v = get(m.getDloss()).f[0] / out.numElements();
          std::fill(out.f.begin(), out.f.end(), v);
          set(m.getResult(), std::move(out));
          return true;
        })
        .Case([&](RowSumOp r) {
          Array out = get(r.getInput());
          int64_t F = out.shape.back(), rows = out.numElements() / F;
          for (int64_t n = 0; n < rows; ++n) {
            double sum = 0;
            for (int64_t k = 0; k < F; ++k)
              sum += out.f[n * F + k];
            for (int64_t k = 0; k < F; ++k)
              out.f[n * F + k] = static_cast<float>(sum);
          }
          set(r.getResult(), std::move(out));
          return true;
        })
        .Case([&](CrossEntropyGradOp c) { return evalCrossEntropyGrad(c); })
        .Case([&](ReduceSumOp r) {
          const Array &a = get(r.getInput());
          auto t = mlir::cast<mlir::RankedTensorType>(r.getType());
          std::vector<int64_t> shape(a.shape.end() - t.getRank(),
                                     a.shape.end());
          Array out = Array::floats(shape);
          int64_t n = out.numElements();
          for (int64_t k = 0; k < a.numElements(); ++k)
            out.f[k % n] += a.f[k];
          set(r.getResult(), std::move(out));
          return true;
        })
        .Case([&](LinearWeightGradOp l) {
          const Array &dy = get(l.getOutputGrad());
          const Array &x = get(l.getInput());
          int64_t O = dy.shape.back(), I = x.shape.back();
          int64_t rows = dy.numElements() / O;
          if (x.numElements() / I != rows)
            return fail(op, "linear_weight_grad: row counts differ");
          std::vector<double> acc(O * I, 0.0);
          for (int64_t n = 0; n < rows; ++n)
            for (int64_t o = 0; o < O; ++o)
              for (int64_t i = 0; i < I; ++i)
                acc[o * I + i] += double(dy.f[n * O + o]) * x.f[n * I + i];
          Array out = Array::floats({O, I});
          for (int64_t k = 0; k < O * I; ++k)
            out.f[k] = static_cast<float>(acc[k]);
          set(l.getResult(), std::move(out));
          return true;
        })
        .Case([&](EmbeddingGradOp e) {
          const Array &ids = get(e.getIds());
          const Array &dy = get(e.getOutputGrad());
          auto t = mlir::cast<mlir::RankedTensorType>(e.getType());
          int64_t V = t.getDimSize(0), E = t.getDimSize(1);
          Array out = Array::floats({V, E});
          for (int64_t k = 0; k < ids.numElements(); ++k) {
            int64_t id = ids.i[k];
            if (id < 0 || id >= V)
              return fail(op, "token id " + std::to_string(id) +
                                  " is out of range");
            for (int64_t j = 0; j < E; ++j)
              out.f[id * E + j] += dy.f[k * E + j];
          }
          set(e.getResult(), std::move(out));
          return true;
        })
        .Case([&](ReluGradOp r) {
          Array out = get(r.getOutputGrad());
          const Array &x = get(r.getInput());
          for (size_t k = 0; k < out.f.size(); ++k)
            if (!(x.f[k] > 0))
              out.f[k] = 0;
          set(r.getResult(), std::move(out));
          return true;
        })
        .Case([&](ZerosLikeOp z) {
          set(z.getResult(), Array::floats(get(z.getInput()).shape));
          return true;
        })
        .Case([&](SliceOp sl) {
          const Array &a = get(sl.getInput());
          int64_t size = mlir::cast<mlir::RankedTensorType>(sl.getType())
                             .getShape()
                             .back();
          int64_t last = a.shape.back(), off = sl.getOffset();
          std::vector<int64_t> shape = a.shape;
          shape.back() = size;
          Array out = Array::floats(shape);
          int64_t rows = a.numElements() / last;
          for (int64_t n = 0; n < rows; ++n)
            for (int64_t k = 0; k < size; ++k)
              out.f[n * size + k] = a.f[n * last + off + k];
          set(sl.getResult(), std::move(out));
          return true;
        })
        .Case([&](LengthMaskOp lm) {
          const Array &len = get(lm.getLengths());
          const Array &seq = get(lm.getSequence());
          int64_t T = seq.shape[0], B = seq.shape[1];
          if (len.numElements() != B)
            return fail(op, "lengths do not match the batch");
          Array out = Array::floats({T, B});
          for (int64_t t = 0; t < T; ++t)
            for (int64_t b = 0; b < B; ++b)
              out.f[t * B + b] = t < len.i[b] ? 1.0f : 0.0f;
          set(lm.getResult(), std::move(out));
          return true;
        })
        .Case([&](ScaleRowsOp sr) {
          Array out = get(sr.getInput());
          const Array &f = get(sr.getFactors());
          int64_t B = out.shape[0];
          if (f.numElements() != B)
            return fail(op, "scale_rows: factors do not match the rows");
          int64_t n = B ? out.numElements() / B : 0;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t k = 0; k < n; ++k)
              out.f[b * n + k] *= f.f[b];
          set(sr.getResult(), std::move(out));
          return true;
        })
        .Default([&](mlir::Operation *) {
          return fail(op, "the reference interpreter does not know op '" +
                              op->getName().getStringRef().str() + "'");
        });
  }

  bool evalLinear(LinearOp l) {
    const Array &x = get(l.getInput());
    const Array &w = get(l.getWeight());
    int64_t in = w.shape[1], out = w.shape[0];
    if (x.shape.back() != in)
      return fail(l, "linear: input has " + std::to_string(x.shape.back()) +
                         " features, weight expects " + std::to_string(in));
    std::vector<int64_t> shape = x.shape;
    shape.back() = out;
    Array r = Array::floats(shape);
    int64_t rows = x.numElements() / in;
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t o = 0; o < out; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < in; ++k)
          acc += double(x.f[n * in + k]) * double(w.f[o * in + k]);
        r.f[n * out + o] = static_cast<float>(acc);
      }
    set(l.getResult(), std::move(r));
    return true;
  }

  template <typename F> bool evalBinary(mlir::Operation *op, F f) {
    const Array &a = get(op->getOperand(0));
    const Array &b = get(op->getOperand(1));
    const Array &lo = a.shape.size() >= b.shape.size() ? a : b;
    const Array &sh = a.shape.size() >= b.shape.size() ? b : a;
    size_t off = lo.shape.size() - sh.shape.size();
    for (size_t k = 0; k < sh.shape.size(); ++k)
      if (lo.shape[off + k] != sh.shape[k])
        return fail(op, "operand shapes " + a.shapeString() + " and " +
                            b.shapeString() + " do not match");
    Array r = Array::floats(lo.shape);
    int64_t inner = sh.numElements();
    bool aIsLong = &lo == &a;
    for (int64_t k = 0; k < r.numElements(); ++k) {
      float x = aIsLong ? a.f[k] : a.f[k % inner];
      float y = aIsLong ? b.f[k % inner] : b.f[k];
      r.f[k] = f(x, y);
    }
    set(op->getResult(0), std::move(r));
    return true;
  }

  template <typename F> bool evalUnary(mlir::Operation *op, F f) {
    Array r = get(op->getOperand(0));
    for (float &v : r.f)
      v = f(v);
    set(op->getResult(0), std::move(r));
    return true;
  }

  bool evalSplit(SplitOp s) {
    const Array &a = get(s.getInput());
    int64_t parts = s.getNumResults();
    int64_t last = a.shape.back(), part = last / parts;
    int64_t rows = a.numElements() / last;
    for (int64_t p = 0; p < parts; ++p) {
      std::vector<int64_t> shape = a.shape;
      shape.back() = part;
      Array r = Array::floats(shape);
      for (int64_t n = 0; n < rows; ++n)
        for (int64_t k = 0; k < part; ++k)
          r.f[n * part + k] = a.f[n * last + p * part + k];
      set(s.getResult(p), std::move(r));
    }
    return true;
  }

  bool evalConcat(ConcatOp c) {
    std::vector<const Array *> in;
    for (mlir::Value v : c.getInputs())
      in.push_back(&get(v));
    std::vector<int64_t> shape = in[0]->shape;
    shape.back() = 0;
    for (const Array *a : in) {
      std::vector<int64_t> lead(a->shape.begin(), a->shape.end() - 1);
      if (lead != std::vector<int64_t>(shape.begin(), shape.end() - 1))
        return fail(c, "concat inputs differ in leading dimensions: " +
                           in[0]->shapeString() + " and " + a->shapeString());
      shape.back() += a->shape.back();
    }
    Array r = Array::floats(shape);
    int64_t rows = r.numElements() / shape.back();
    for (int64_t n = 0; n < rows; ++n) {
      int64_t col = 0;
      for (const Array *a : in) {
        int64_t w = a->shape.back();
        for (int64_t k = 0; k < w; ++k)
          r.f[n * shape.back() + col + k] = a->f[n * w + k];
        col += w;
      }
    }
    set(c.getResult(), std::move(r));
    return true;
  }

  bool evalStack(StackOp s) {
    const Array &first = get(s.getInputs()[0]);
    std::vector<int64_t> shape{static_cast<int64_t>(s.getInputs().size())};
    shape.insert(shape.end(), first.shape.begin(), first.shape.end());
    Array r = Array::floats(shape);
    int64_t n = first.numElements();
    for (auto [k, v] : llvm::enumerate(s.getInputs())) {
      const Array &a = get(v);
      if (a.shape != first.shape)
        return fail(s, "stack inputs differ: " + first.shapeString() + " and " +
                           a.shapeString());
      std::copy(a.f.begin(), a.f.end(), r.f.begin() + k * n);
    }
    set(s.getResult(), std::move(r));
    return true;
  }

  bool evalIndex(IndexOp i) {
    const Array &a = get(i.getInput());
    int64_t k = static_cast<int64_t>(i.getIndex());
    if (k >= a.shape[0])
      return fail(i, "index out of range");
    Array r =
        Array::floats(std::vector<int64_t>(a.shape.begin() + 1, a.shape.end()));
    int64_t n = r.numElements();
    std::copy(a.f.begin() + k * n, a.f.begin() + (k + 1) * n, r.f.begin());
    set(i.getResult(), std::move(r));
    return true;
  }

  bool evalTranspose(TransposeOp t) {
    const Array &a = get(t.getInput());
    llvm::ArrayRef<int64_t> perm = t.getPermutation();
    size_t rank = a.shape.size();
    std::vector<int64_t> shape(rank), stride(rank, 1);
    for (size_t d = 0; d < rank; ++d)
      shape[d] = a.shape[perm[d]];
    for (int64_t d = rank - 2; d >= 0; --d)
      stride[d] = stride[d + 1] * a.shape[d + 1];
    Array r = Array::floats(shape);
    std::vector<int64_t> idx(rank, 0);
    for (int64_t k = 0; k < r.numElements(); ++k) {
      int64_t src = 0;
      for (size_t d = 0; d < rank; ++d)
        src += idx[d] * stride[perm[d]];
      r.f[k] = a.f[src];
      for (int64_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < shape[d])
          break;
        idx[d] = 0;
      }
    }
    set(t.getResult(), std::move(r));
    return true;
  }

  bool evalEmbedding(EmbeddingOp e) {
    const Array &ids = get(e.getIds());
    const Array &w = get(e.getWeight());
    int64_t vocab = w.shape[0], dim = w.shape[1];
    std::vector<int64_t> shape = ids.shape;
    shape.push_back(dim);
    Array r = Array::floats(shape);
    for (int64_t k = 0; k < ids.numElements(); ++k) {
      int64_t id = ids.i[k];
      if (id < 0 || id >= vocab)
        return fail(e, "token id " + std::to_string(id) + " at flat index " +
                           std::to_string(k) + " is out of range [0, " +
                           std::to_string(vocab) + ")");
      std::copy(w.f.begin() + id * dim, w.f.begin() + (id + 1) * dim,
                r.f.begin() + k * dim);
    }
    set(e.getResult(), std::move(r));
    return true;
  }

  bool evalLayerNorm(LayerNormOp l) {
    Array r = get(l.getInput());
    const Array &w = get(l.getWeight());
    const Array &b = get(l.getBias());
    double eps = l.getEpsilon().convertToDouble();
    int64_t f = r.shape.back(), rows = r.numElements() / f;
    for (int64_t n = 0; n < rows; ++n) {
      float *row = &r.f[n * f];
      double mean = 0, var = 0;
      for (int64_t k = 0; k < f; ++k)
        mean += row[k];
      mean /= f;
      for (int64_t k = 0; k < f; ++k)
        var += (row[k] - mean) * (row[k] - mean);
      var /= f;
      double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t k = 0; k < f; ++k)
        row[k] = static_cast<float>((row[k] - mean) * inv * w.f[k] + b.f[k]);
    }
    set(l.getResult(), std::move(r));
    return true;
  }

  bool evalSoftmax(mlir::Operation *op, bool log) {
    Array r = get(op->getOperand(0));
    int64_t f = r.shape.back(), rows = r.numElements() / f;
    for (int64_t n = 0; n < rows; ++n) {
      float *row = &r.f[n * f];
      double mx = row[0];
      for (int64_t k = 1; k < f; ++k)
        mx = std::max<double>(mx, row[k]);
      double sum = 0;
      for (int64_t k = 0; k < f; ++k)
        sum += std::exp(row[k] - mx);
      for (int64_t k = 0; k < f; ++k)
        row[k] = static_cast<float>(log ? row[k] - mx - std::log(sum)
                                        : std::exp(row[k] - mx) / sum);
    }
    set(op->getResult(0), std::move(r));
    return true;
  }

  /// Log-softmax of row `n` of the logits at class `c`, in double.
  static double logProb(const Array &logits, int64_t n, int64_t c) {
    int64_t C = logits.shape.back();
    const float *row = &logits.f[n * C];
    double mx = row[0];
    for (int64_t k = 1; k < C; ++k)
      mx = std::max<double>(mx, row[k]);
    double sum = 0;
    for (int64_t k = 0; k < C; ++k)
      sum += std::exp(row[k] - mx);
    return row[c] - mx - std::log(sum);
  }

  bool evalCrossEntropy(CrossEntropyOp op) {
    const Array &logits = get(op.getLogits());
    const Array &targets = get(op.getTargets());
    int64_t C = logits.shape.back(), rows = logits.numElements() / C;
    if (targets.numElements() != rows)
      return fail(op, "cross_entropy: targets do not match the logits");
    double total = 0;
    int64_t count = 0;
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    for (int64_t n = 0; n < rows; ++n) {
      int64_t t = targets.i[n];
      if (t == ignore)
        continue;
      if (t < 0 || t >= C)
        return fail(op, "target " + std::to_string(t) + " is outside [0, " +
                            std::to_string(C) + ")");
      total -= logProb(logits, n, t);
      ++count;
    }
    Array out = Array::floats({});
    out.f[0] = static_cast<float>(total / count); // NaN when all ignored
    set(op.getResult(), std::move(out));
    return true;
  }

  bool evalCrossEntropyGrad(CrossEntropyGradOp op) {
    const Array &logits = get(op.getLogits());
    const Array &targets = get(op.getTargets());
    float d = get(op.getDloss()).f[0];
    int64_t C = logits.shape.back(), rows = logits.numElements() / C;
    int64_t count = 0;
    int64_t ignore = op.getIgnoreIndexAttr().getInt();
    for (int64_t n = 0; n < rows; ++n)
      count += targets.i[n] != ignore;
    Array out = Array::floats(logits.shape);
    for (int64_t n = 0; n < rows; ++n) {
      int64_t t = targets.i[n];
      if (t == ignore)
        continue;
      for (int64_t c = 0; c < C; ++c) {
        double p = std::exp(logProb(logits, n, c));
        out.f[n * C + c] =
            static_cast<float>((p - (c == t ? 1.0 : 0.0)) * d / count);
      }
    }
    set(op.getResult(), std::move(out));
    return true;
  }

  /// Copies batch row `b` of `src` ([B, ...]) into row `b` of `dst`.
  static void copyRow(const Array &src, Array &dst, int64_t b) {
    int64_t n = src.numElements() / src.shape[0];
    std::copy(src.f.begin() + b * n, src.f.begin() + (b + 1) * n,
              dst.f.begin() + b * n);
  }

  bool evalScan(ScanOp s) {
    std::vector<Array> seqs;
    for (mlir::Value v : s.getInputs())
      seqs.push_back(get(v));
    int64_t T = seqs[0].shape[0], B = seqs[0].shape[1];
    for (const Array &a : seqs)
      if (a.shape[0] != T || a.shape[1] != B)
        return fail(s, "scan inputs differ in [T, B]");
    if (T == 0)
      return fail(s, "a sequence must have at least one step");
    std::vector<Array> states;
    for (mlir::Value v : s.getInits()) {
      states.push_back(get(v));
      // Masking by lengths works on batch rows; other states (such as the
      // gradient sums of a backward scan) may have any shape.
      if (s.getLengths() &&
          (states.back().shape.empty() || states.back().shape[0] != B))
        return fail(s, "initial state of shape " + states.back().shapeString() +
                           " does not have batch size " + std::to_string(B));
    }
    std::vector<int64_t> lengths;
    if (s.getLengths()) {
      const Array &len = get(s.getLengths());
      if (len.numElements() != B)
        return fail(s, "lengths has " + std::to_string(len.numElements()) +
                           " entries but the batch size is " +
                           std::to_string(B));
      for (int64_t b = 0; b < B; ++b) {
        if (len.i[b] < 1 || len.i[b] > T)
          return fail(s, "lengths[" + std::to_string(b) +
                             "] = " + std::to_string(len.i[b]) +
                             " is outside 1..T (T = " + std::to_string(T) +
                             ")");
        lengths.push_back(len.i[b]);
      }
    }
    mlir::Block &body = s.getBodyBlock();
    unsigned numOutputs = s.getNumOutputs();
    std::vector<Array> outputs(numOutputs);
    for (int64_t step = 0; step < T; ++step) {
      int64_t t = s.getReverse() ? T - 1 - step : step;
      for (size_t k = 0; k < seqs.size(); ++k) {
        const Array &a = seqs[k];
        Array slice = Array::floats(
            std::vector<int64_t>(a.shape.begin() + 1, a.shape.end()));
        int64_t n = slice.numElements();
        std::copy(a.f.begin() + t * n, a.f.begin() + (t + 1) * n,
                  slice.f.begin());
        set(body.getArgument(k), std::move(slice));
      }
      for (size_t k = 0; k < states.size(); ++k)
        set(body.getArgument(seqs.size() + k), states[k]);
      std::vector<Array> yielded;
      if (!evalBlock(body, yielded))
        return false;
      for (unsigned k = 0; k < numOutputs; ++k) {
        Array &out = yielded[k];
        if (out.shape.empty() || out.shape[0] != B)
          return fail(s, "step output does not have batch size " +
                             std::to_string(B));
        if (!lengths.empty())
          for (int64_t b = 0; b < B; ++b)
            if (t >= lengths[b]) {
              int64_t n = out.numElements() / B;
              std::fill(out.f.begin() + b * n, out.f.begin() + (b + 1) * n,
                        0.0f);
            }
        if (step == 0) {
          std::vector<int64_t> shape{T};
          shape.insert(shape.end(), out.shape.begin(), out.shape.end());
          outputs[k] = Array::floats(shape);
        }
        int64_t n = out.numElements();
        std::copy(out.f.begin(), out.f.end(), outputs[k].f.begin() + t * n);
      }
      for (size_t k = 0; k < states.size(); ++k) {
        Array &next = yielded[numOutputs + k];
        if (next.shape != states[k].shape)
          return fail(s, "new state has shape " + next.shapeString() +
                             ", expected " + states[k].shapeString());
        if (lengths.empty()) {
          states[k] = std::move(next);
          continue;
        }
        for (int64_t b = 0; b < B; ++b)
          if (t < lengths[b])
            copyRow(next, states[k], b);
      }
    }
    for (unsigned k = 0; k < numOutputs; ++k)
      set(s.getResult(k), std::move(outputs[k]));
    for (size_t k = 0; k < states.size(); ++k)
      set(s.getResult(numOutputs + k), std::move(states[k]));
    return true;
  }
};

} // namespace

bool loom::reference::run(mlir::func::FuncOp func,
                          const std::vector<Array> &inputs,
                          const ParamMap &params, std::vector<Array> &outputs,
                          std::string &error) {
  error.clear();
  Evaluator ev(params, error);
  mlir::Block &entry = func.getBody().front();
  if (inputs.size() != entry.getNumArguments()) {
    error = "expected " + std::to_string(entry.getNumArguments()) +
            " inputs, got " + std::to_string(inputs.size());
    return false;
  }
  for (auto [arg, value] : llvm::zip(entry.getArguments(), inputs))
    ev.env[mlir::Value(arg).getAsOpaquePointer()] = value;
  return ev.evalBlock(entry, outputs);
}
