//===- ModelBinding.cpp - inputs and weights of a compiled model ------===//
#include "runtime/ModelBinding.h"

#include "ir/LoomOps.h"
#include "runtime/Limits.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <set>

using namespace loom;

std::string ModelPort::describe() const {
  std::string s = isInt ? "i64[" : "f32[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i];
  return s + "]";
}

ModelSignature loom::signatureOf(mlir::func::FuncOp func) {
  ModelSignature sig;
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    ModelPort p;
    if (auto n = func.getArgAttrOfType<mlir::StringAttr>(i, kNameAttr))
      p.name = n.str();
    else
      p.name = "arg" + std::to_string(i);
    auto t = mlir::cast<mlir::RankedTensorType>(func.getArgument(i).getType());
    p.isInt = t.getElementType().isInteger();
    if (auto dims = func.getArgAttrOfType<mlir::ArrayAttr>(i, kDimsAttr)) {
      for (mlir::Attribute d : dims)
        p.dims.push_back(mlir::cast<mlir::StringAttr>(d).str());
    } else {
      for (int64_t d = 0; d < t.getRank(); ++d)
        p.dims.push_back(t.isDynamicDim(d) ? "?"
                                           : std::to_string(t.getDimSize(d)));
    }
    sig.inputs.push_back(p);
  }
  for (unsigned i = 0; i < func.getNumResults(); ++i) {
    ModelPort p;
    if (auto n = func.getResultAttrOfType<mlir::StringAttr>(i, kNameAttr))
      p.name = n.str();
    else
      p.name = "result" + std::to_string(i);
    sig.outputs.push_back(p);
  }
  return sig;
}

ErrorOr<mlir::func::FuncOp> loom::findModel(mlir::ModuleOp module,
                                            const std::string &name) {
  std::vector<mlir::func::FuncOp> models;
  for (auto f : module.getOps<mlir::func::FuncOp>())
    if (f->hasAttr(kModelAttr) && (name.empty() || f.getName() == name))
      models.push_back(f);
  if (models.empty())
    return Error{name.empty() ? "the file defines no model"
                              : "the file defines no model '" + name + "'"};
  if (models.size() > 1)
    return Error{"the file defines several models; pick one with --model"};
  return models[0];
}

Status loom::checkInputShape(const ModelPort &p,
                             const std::vector<int64_t> &shape,
                             SizeBindings &sizes) {
  if (shape.size() != p.dims.size())
    return Error{"input '" + p.name + "' must have rank " +
                 std::to_string(p.dims.size()) + " (" + p.describe() +
                 "), found shape " + shapeString(shape)};
  for (size_t d = 0; d < p.dims.size(); ++d) {
    const std::string &sym = p.dims[d];
    int64_t n = shape[d];
    bool isNumber = !sym.empty() && std::isdigit((unsigned char)sym[0]);
    if (isNumber) {
      if (std::to_string(n) != sym)
        return Error{"input '" + p.name + "' must have shape " + p.describe() +
                     ", found " + shapeString(shape) + " (dimension " +
                     std::to_string(d) + " differs)"};
      continue;
    }
    if (n <= 0)
      return Error{"input '" + p.name + "' has " + sym + " = " +
                   std::to_string(n) + " (shape " + shapeString(shape) +
                   "); sizes must be at least 1"};
    auto [pos, inserted] = sizes.insert({sym, {n, p.name}});
    if (!inserted && pos->second.first != n)
      return Error{"input '" + p.name + "' has " + sym + " = " +
                   std::to_string(n) + " (shape " + shapeString(shape) +
                   ") but input '" + pos->second.second + "' has " + sym +
                   " = " + std::to_string(pos->second.first)};
  }
  return Status();
}

ErrorOr<std::vector<Tensor>>
loom::bindInputs(mlir::func::FuncOp func,
                 const std::map<std::string, Tensor> &given) {
  ModelSignature sig = signatureOf(func);
  std::set<std::string> known;
  for (const ModelPort &p : sig.inputs)
    known.insert(p.name);
  for (const auto &[name, t] : given)
    if (!known.count(name)) {
      std::string list;
      for (const ModelPort &p : sig.inputs)
        list += (list.empty() ? "" : ", ") + p.name;
      return Error{"the model has no input '" + name +
                   "' (its inputs: " + (list.empty() ? "none" : list) + ")"};
    }
  std::vector<Tensor> bound;
  SizeBindings sizes;
  for (const ModelPort &p : sig.inputs) {
    auto it = given.find(p.name);
    if (it == given.end())
      return Error{"missing input '" + p.name + "' (declared " + p.describe() +
                   "); pass --input " + p.name + "=FILE.npy"};
    Tensor t = it->second;
    if (p.isInt) {
      if (t.dtype != DType::I64 && t.dtype != DType::I32)
        return Error{"input '" + p.name + "' must be int64 (or int32), found " +
                     dtypeName(t.dtype)};
      if (t.dtype == DType::I32) {
        auto v = toI64Values(t);
        if (!v)
          return Error{v.error()};
        t = Tensor::i64(t.shape, v.take());
      }
    } else if (t.dtype != DType::F32) {
      return Error{"input '" + p.name + "' must be float32, found " +
                   dtypeName(t.dtype) +
                   " (convert it with .astype(numpy.float32))"};
    }
    Status st = checkInputShape(p, t.shape, sizes);
    if (!st.ok())
      return Error{st.error()};
    bound.push_back(std::move(t));
  }
  return bound;
}

namespace {

/// Run-time shapes of the values of a model function, from its inputs'.
class ShapeInference {
public:
  llvm::DenseMap<mlir::Value, std::vector<int64_t>> shapes;
  llvm::DenseMap<mlir::Value, int64_t> indices;
  std::string error;

  /// The shapes of `func`'s top-level values for these input shapes.
  bool run(mlir::func::FuncOp func,
           const std::vector<std::vector<int64_t>> &inputShapes) {
    for (auto [arg, shape] : llvm::zip(func.getArguments(), inputShapes))
      shapes[arg] = shape;
    return block(func.getBody().front());
  }

  bool block(mlir::Block &b) {
    for (mlir::Operation &op : b) {
      if (op.hasTrait<mlir::OpTrait::IsTerminator>())
        return true;
      if (!infer(&op))
        return false;
    }
    return true;
  }

private:
  bool fail(const std::string &msg) {
    error = msg;
    return false;
  }
  /// The shape of `v` (empty if unknown), by value: a reference into
  /// `shapes` would dangle when `shapes[x] = of(v)` inserts and rehashes.
  std::vector<int64_t> of(mlir::Value v) const {
    auto it = shapes.find(v);
    return it == shapes.end() ? std::vector<int64_t>{} : it->second;
  }
  /// "file:line:col: " of the model source that made `op`, if known.
  static std::string where(mlir::Operation *op) {
    auto l = mlir::dyn_cast<mlir::FileLineColLoc>(op->getLoc());
    if (!l)
      return "";
    return l.getFilename().str() + ":" + std::to_string(l.getLine()) + ":" +
           std::to_string(l.getColumn()) + ": ";
  }

  bool infer(mlir::Operation *op) {
    return llvm::TypeSwitch<mlir::Operation *, bool>(op)
        .Case([&](mlir::arith::ConstantOp c) {
          if (auto i = mlir::dyn_cast<mlir::IntegerAttr>(c.getValue()))
            indices[c.getResult()] = i.getInt();
          else
            shapes[c.getResult()] = staticShape(c.getType());
          return true;
        })
        .Case([&](mlir::tensor::DimOp d) {
          const auto &s = of(d.getSource());
          int64_t k = indices.lookup(d.getIndex());
          if (k < 0 || k >= (int64_t)s.size())
            return fail("dimension index out of range");
          indices[d.getResult()] = s[k];
          return true;
        })
        .Case([&](ZerosOp z) {
          auto t = mlir::cast<mlir::RankedTensorType>(z.getType());
          std::vector<int64_t> s;
          size_t next = 0;
          for (int64_t d = 0; d < t.getRank(); ++d)
            s.push_back(t.isDynamicDim(d) ? indices.lookup(z.getSizes()[next++])
                                          : t.getDimSize(d));
          shapes[z.getResult()] = s;
          return true;
        })
        .Case([&](LinearOp l) {
          auto s = of(l.getInput());
          s.back() = staticShape(l.getWeight().getType())[0];
          shapes[l.getResult()] = s;
          return true;
        })
        .Case([&](EmbeddingOp e) {
          auto s = of(e.getIds());
          s.push_back(staticShape(e.getWeight().getType())[1]);
          shapes[e.getResult()] = s;
          return true;
        })
        .Case([&](SplitOp s) {
          auto sh = of(s.getInput());
          sh.back() /= s.getNumResults();
          for (mlir::Value r : s.getResults())
            shapes[r] = sh;
          return true;
        })
        .Case([&](ConcatOp c) {
          auto sh = of(c.getInputs()[0]);
          sh.back() =
              mlir::cast<mlir::RankedTensorType>(c.getType()).getShape().back();
          shapes[c.getResult()] = sh;
          return true;
        })
        .Case([&](StackOp s) {
          std::vector<int64_t> sh{(int64_t)s.getInputs().size()};
          auto in = of(s.getInputs()[0]);
          sh.insert(sh.end(), in.begin(), in.end());
          shapes[s.getResult()] = sh;
          return true;
        })
        .Case([&](IndexOp i) {
          auto sh = of(i.getInput());
          int64_t k = static_cast<int64_t>(i.getIndex());
          if (sh.empty() || k >= sh[0])
            return fail(where(i) + "index " + std::to_string(k) +
                        " is out of range: the indexed dimension has size " +
                        (sh.empty() ? "0" : std::to_string(sh[0])) +
                        " for these inputs");
          shapes[i.getResult()] =
              std::vector<int64_t>(sh.begin() + 1, sh.end());
          return true;
        })
        .Case([&](TransposeOp t) {
          auto in = of(t.getInput());
          std::vector<int64_t> sh;
          for (int64_t p : t.getPermutation())
            sh.push_back(in[p]);
          shapes[t.getResult()] = sh;
          return true;
        })
        .Case([&](ScanOp s) {
          auto seq = of(s.getInputs()[0]);
          mlir::Block &body = s.getBodyBlock();
          for (auto [k, v] : llvm::enumerate(s.getInputs())) {
            auto sh = of(v);
            shapes[body.getArgument(k)] =
                std::vector<int64_t>(sh.begin() + 1, sh.end());
          }
          for (auto [k, v] : llvm::enumerate(s.getInits()))
            shapes[body.getArgument(s.getInputs().size() + k)] = of(v);
          if (!block(body))
            return false;
          auto yield = mlir::cast<YieldOp>(body.getTerminator());
          for (unsigned k = 0; k < s.getNumResults(); ++k) {
            auto sh = of(yield.getValues()[k]);
            if (k < s.getNumOutputs())
              sh.insert(sh.begin(), seq[0]);
            shapes[s.getResult(k)] = sh;
          }
          return true;
        })
        .Case<CrossEntropyOp, NllOp, MeanOp>([&](mlir::Operation *o) {
          shapes[o->getResult(0)] = {};
          return true;
        })
        .Case([&](NllGradOp n) {
          shapes[n.getResult()] = of(n.getLogp());
          return true;
        })
        .Case([&](MeanGradOp m) {
          shapes[m.getResult()] = of(m.getInput());
          return true;
        })
        .Case([&](CrossEntropyGradOp c) {
          shapes[c.getResult()] = of(c.getLogits());
          return true;
        })
        .Case([&](ReduceSumOp r) {
          auto in = of(r.getInput());
          int64_t keep =
              mlir::cast<mlir::RankedTensorType>(r.getType()).getRank();
          shapes[r.getResult()] =
              std::vector<int64_t>(in.end() - keep, in.end());
          return true;
        })
        .Case([&](SliceOp sl) {
          auto sh = of(sl.getInput());
          sh.back() = mlir::cast<mlir::RankedTensorType>(sl.getType())
                          .getShape()
                          .back();
          shapes[sl.getResult()] = sh;
          return true;
        })
        .Case([&](LengthMaskOp lm) {
          auto seq = of(lm.getSequence());
          shapes[lm.getResult()] = {seq[0], seq[1]};
          return true;
        })
        .Case([&](ScaleRowsOp sr) {
          shapes[sr.getResult()] = of(sr.getInput());
          return true;
        })
        .Case([&](DropoutOp d) {
          shapes[d.getResult()] = of(d.getInput());
          return true;
        })
        .Default([&](mlir::Operation *o) {
          if (o->getNumResults() == 0)
            return true;
          // Statically shaped results (parameters, weight gradients) need
          // no rule.
          bool allStatic = llvm::all_of(o->getResultTypes(), [](mlir::Type t) {
            auto r = mlir::dyn_cast<mlir::RankedTensorType>(t);
            return r && r.hasStaticShape();
          });
          if (allStatic) {
            for (mlir::Value r : o->getResults())
              shapes[r] = staticShape(r.getType());
            return true;
          }
          if (!o->hasTrait<mlir::OpTrait::SameOperandsAndResultType>() &&
              !mlir::isa<AddOp, SubOp, MulOp, DivOp, MinimumOp, ReluGradOp,
                         LayerNormOp>(o))
            return fail("no shape rule for '" +
                        o->getName().getStringRef().str() + "'");
          // Elementwise ops: the larger operand's shape.
          std::vector<int64_t> sh;
          for (mlir::Value v : o->getOperands())
            if (of(v).size() >= sh.size())
              sh = of(v);
          for (mlir::Value r : o->getResults())
            shapes[r] = sh;
          return true;
        });
  }

  static std::vector<int64_t> staticShape(mlir::Type t) {
    auto r = mlir::cast<mlir::RankedTensorType>(t);
    return std::vector<int64_t>(r.getShape().begin(), r.getShape().end());
  }
};

} // namespace

namespace {

/// The bytes of `shape` at `elementBytes` each, saturating.
uint64_t shapeBytes(uint64_t elementBytes, const std::vector<int64_t> &shape) {
  uint64_t bytes = elementBytes;
  for (int64_t d : shape)
    bytes = saturatingMul(bytes, uint64_t(std::max<int64_t>(d, 0)));
  return bytes;
}

/// The bytes of a tensor of `type`'s element type and `shape`.
uint64_t tensorBytes(mlir::Type type, const std::vector<int64_t> &shape) {
  uint64_t element = 4;
  if (auto t = mlir::dyn_cast<mlir::ShapedType>(type))
    element = std::max<uint64_t>(1, t.getElementTypeBitWidth() / 8);
  return shapeBytes(element, shape);
}

/// A running total of sizes, and which was the first of the largest.
struct SizeTotal {
  uint64_t total = 0, largest = 0;
  int index = -1;
  void add(uint64_t bytes, int i) {
    total = saturatingAdd(total, bytes);
    if (index < 0 || bytes > largest) {
      largest = bytes;
      index = i;
    }
  }
};

std::string elementName(mlir::Type type) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (auto t = mlir::dyn_cast<mlir::ShapedType>(type))
    os << t.getElementType();
  else
    os << type;
  return s;
}

/// " at file:line:col" of the model source that made `v`, if known.
std::string sourceOf(mlir::Value v) {
  auto l = mlir::dyn_cast<mlir::FileLineColLoc>(v.getLoc());
  if (!l)
    return "";
  return " at " + l.getFilename().str() + ":" + std::to_string(l.getLine()) +
         ":" + std::to_string(l.getColumn());
}

} // namespace

Status loom::checkParameterMemory(mlir::func::FuncOp func) {
  std::vector<ParamInfo> params = parametersOf(func);
  SizeTotal size;
  for (size_t i = 0; i < params.size(); ++i)
    size.add(shapeBytes(4, params[i].shape), int(i));
  if (size.index < 0)
    return Status();
  const ParamInfo &big = params[size.index];
  return checkMemory(size.total, "holding the parameters of '" +
                                     func.getName().str() +
                                     "' (the largest: '" + big.name + "' f32" +
                                     shapeString(big.shape) + ")");
}

Status
loom::checkRunMemory(mlir::func::FuncOp func,
                     const std::vector<std::vector<int64_t>> &inputShapes) {
  ShapeInference si;
  if (!si.run(func, inputShapes))
    return Error{si.error};
  // In program order, so that the first of equally large tensors is named.
  std::vector<mlir::Value> values(func.getArguments().begin(),
                                  func.getArguments().end());
  for (mlir::Operation &op : func.getBody().front())
    values.insert(values.end(), op.result_begin(), op.result_end());
  SizeTotal size;
  for (size_t i = 0; i < values.size(); ++i) {
    auto it = si.shapes.find(values[i]);
    if (it != si.shapes.end())
      size.add(tensorBytes(values[i].getType(), it->second), int(i));
  }
  if (size.index < 0)
    return Status();
  mlir::Value big = values[size.index];
  return checkMemory(size.total, "running '" + func.getName().str() +
                                     "' at these input sizes (the largest "
                                     "tensor: " +
                                     elementName(big.getType()) +
                                     shapeString(si.shapes[big]) +
                                     sourceOf(big) + ")");
}

ErrorOr<std::vector<ValueCheck>>
loom::valueChecksOf(mlir::func::FuncOp func,
                    const std::vector<std::vector<int64_t>> &inputShapes) {
  ShapeInference si;
  if (!si.run(func, inputShapes))
    return Error{si.error};
  auto argIndex = [&](mlir::Value v) -> int {
    auto ba = mlir::dyn_cast<mlir::BlockArgument>(v);
    if (!ba || ba.getOwner() != &func.getBody().front())
      return -1;
    return ba.getArgNumber();
  };
  std::vector<ValueCheck> checks;
  func.walk([&](mlir::Operation *op) {
    ValueCheck c;
    if (auto e = mlir::dyn_cast<EmbeddingOp>(op)) {
      c.kind = ValueCheck::TokenIds;
      c.input = argIndex(e.getIds());
      c.bound = mlir::cast<mlir::RankedTensorType>(e.getWeight().getType())
                    .getDimSize(0);
    } else if (mlir::isa<CrossEntropyOp, NllOp>(op)) {
      c.kind = ValueCheck::Targets;
      c.input = argIndex(op->getOperand(1));
      c.bound = mlir::cast<mlir::RankedTensorType>(op->getOperand(0).getType())
                    .getShape()
                    .back();
      c.ignore =
          mlir::isa<NllOp>(op)
              ? mlir::cast<NllOp>(op).getIgnoreIndexAttr().getInt()
              : mlir::cast<CrossEntropyOp>(op).getIgnoreIndexAttr().getInt();
    } else if (auto s = mlir::dyn_cast<ScanOp>(op)) {
      if (!s.getLengths())
        return;
      c.kind = ValueCheck::Lengths;
      c.input = argIndex(s.getLengths());
      c.bound = si.shapes[s.getInputs()[0]][0];
      c.batch = si.shapes[s.getInputs()[0]][1];
    } else {
      return;
    }
    if (c.input < 0)
      return;
    c.shape = inputShapes[c.input];
    checks.push_back(c);
  });
  return checks;
}

std::string ValueCheck::where(int64_t flat) const {
  // The multi-dimensional index of a flat one, row-major.
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string out = "[";
  for (size_t d = 0; d < idx.size(); ++d)
    out += (d ? ", " : "") + std::to_string(idx[d]);
  return out + "]";
}

Status loom::applyValueChecks(const std::vector<ValueCheck> &checks,
                              const ModelSignature &sig,
                              const int64_t *const *data,
                              const int64_t *counts) {
  for (const ValueCheck &c : checks) {
    const int64_t *ids = data[c.input];
    int64_t n = counts[c.input];
    const std::string &name = sig.inputs[c.input].name;
    switch (c.kind) {
    case ValueCheck::TokenIds:
      for (int64_t i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= c.bound) {
          return Error{"input '" + name + "' has token id " +
                       std::to_string(ids[i]) + " at " + c.where(i) +
                       ", outside the vocabulary [0, " +
                       std::to_string(c.bound) + ")"};
        }
      break;
    case ValueCheck::Targets:
      for (int64_t i = 0; i < n; ++i)
        if (ids[i] != c.ignore && (ids[i] < 0 || ids[i] >= c.bound))
          return Error{"input '" + name + "' has target " +
                       std::to_string(ids[i]) + " at flat index " +
                       std::to_string(i) + ", outside the classes [0, " +
                       std::to_string(c.bound) + ") (ignore_index is " +
                       std::to_string(c.ignore) + ")"};
      break;
    case ValueCheck::Lengths:
      if (n != c.batch)
        return Error{"input '" + name + "' has " + std::to_string(n) +
                     " lengths but the batch has " + std::to_string(c.batch) +
                     " sequences (one length per batch entry)"};
      for (int64_t b = 0; b < n; ++b)
        if (ids[b] < 1 || ids[b] > c.bound)
          return Error{"input '" + name + "' has length " +
                       std::to_string(ids[b]) + " at [" + std::to_string(b) +
                       "], outside 1..T (T = " + std::to_string(c.bound) + ")"};
      break;
    }
  }
  return Status();
}

Status loom::checkInputValues(mlir::func::FuncOp func,
                              const std::vector<Tensor> &inputs) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<const int64_t *> data;
  std::vector<int64_t> counts;
  for (const Tensor &t : inputs) {
    shapes.push_back(t.shape);
    data.push_back(t.dtype == DType::I64 ? t.i64Data() : nullptr);
    counts.push_back(t.numElements());
  }
  auto checks = valueChecksOf(func, shapes);
  if (!checks)
    return Error{checks.error()};
  return applyValueChecks(*checks, signatureOf(func), data.data(),
                          counts.data());
}

std::vector<ParamInfo> loom::parametersOf(mlir::func::FuncOp func) {
  std::vector<ParamInfo> out;
  std::set<std::string> seen;
  func.walk([&](ParamOp p) {
    std::string name = p.getName().str();
    if (!seen.insert(name).second)
      return;
    ParamInfo info;
    info.name = name;
    auto t = mlir::cast<mlir::RankedTensorType>(p.getType());
    info.shape.assign(t.getShape().begin(), t.getShape().end());
    if (auto init = p->getAttrOfType<mlir::StringAttr>(kInitAttr))
      info.init = init.str();
    out.push_back(std::move(info));
  });
  return out;
}

ErrorOr<std::map<std::string, Tensor>>
loom::bindWeights(mlir::func::FuncOp func, const SafeTensorsFile &weights) {
  std::map<std::string, Tensor> out;
  for (const ParamInfo &p : parametersOf(func)) {
    const Tensor *t = weights.find(p.name);
    if (!t)
      return Error{"the weights lack tensor '" + p.name + "' (expected shape " +
                   shapeString(p.shape) + ")"};
    if (t->shape != p.shape)
      return Error{"tensor '" + p.name + "' has shape " + t->shapeString() +
                   ", expected " + shapeString(p.shape)};
    if (t->dtype != DType::F32 && t->dtype != DType::F16 &&
        t->dtype != DType::BF16)
      return Error{std::string("tensor '") + p.name + "' has dtype " +
                   safetensorsDTypeName(t->dtype) +
                   "; parameters must be F32, F16 or BF16"};
    auto values = toF32Values(*t);
    if (!values)
      return Error{"tensor '" + p.name + "': " + values.error()};
    out[p.name] = Tensor::f32(p.shape, values.take());
  }
  return out;
}

ErrorOr<std::vector<std::vector<int64_t>>>
loom::inferOutputShapes(mlir::func::FuncOp func,
                        const std::vector<std::vector<int64_t>> &inputShapes) {
  ShapeInference si;
  if (!si.run(func, inputShapes))
    return Error{si.error};
  mlir::Block &entry = func.getBody().front();
  std::vector<std::vector<int64_t>> out;
  for (mlir::Value v : entry.getTerminator()->getOperands())
    out.push_back(si.shapes[v]);
  return out;
}
