//===- MLIRGen.cpp - loom DSL to the loom dialect ---------------------===//
//
// Semantic checks and IR generation in one walk over the AST, as the Toy
// tutorial does: every check reports at the DSL location that caused it.
//
// Model-level values are sequences and tensors with symbolic run-time sizes
// (T, B); cell-level values are per-sample vectors that become batched
// `[B, N]` tensors inside the body of a `loom.scan`. A recurrent layer is a
// cell, found by name among the prelude's and the user's cells; nothing here
// knows what `lstm` or `gru` compute.
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

using namespace loom;
using namespace loom::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace {

/// The largest size a dimension or a size option may have.
constexpr int64_t kMaxSize = int64_t(1) << 40;

/// A model-level dimension: a static size, or a named run-time size.
struct Dim {
  int64_t size = mlir::ShapedType::kDynamic;
  std::string symbol;
  bool isStatic() const { return !mlir::ShapedType::isDynamic(size); }
  bool operator==(const Dim &o) const {
    return isStatic() ? o.isStatic() && size == o.size
                      : !o.isStatic() && symbol == o.symbol;
  }
  bool operator!=(const Dim &o) const { return !(*this == o); }
};

std::string shapeString(const std::vector<Dim> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i].isStatic() ? std::to_string(shape[i].size) : shape[i].symbol;
  }
  return s + "]";
}

/// A model-level value.
struct MVal {
  enum Kind { Tensor, Tuple, Number } kind = Tensor;
  mlir::Value value;
  std::vector<Dim> shape;
  bool isInt = false; // Tensor: integer elements; Number: integral
  std::vector<MVal> elements;
  double number = 0;
};

/// A cell-level value: scalar, per-sample vector or matrix; `batched` when it
/// depends on the step input or the states (then it has a leading B).
struct CVal {
  enum Kind { Scalar, Vector, Matrix, Tuple } kind = Vector;
  mlir::Value value;
  bool batched = false;
  int64_t rows = 0, cols = 0; // Vector: cols is the size; Matrix: rows x cols
  std::vector<CVal> elements;
  std::string describe() const {
    switch (kind) {
    case Scalar:
      return "a scalar";
    case Vector:
      return "a vector [" + std::to_string(cols) + "]";
    case Matrix:
      return "a matrix [" + std::to_string(rows) + ", " + std::to_string(cols) +
             "]";
    case Tuple:
      return "a group of " + std::to_string(elements.size()) + " values";
    }
    return "";
  }
};

class Generator {
public:
  Generator(mlir::MLIRContext &ctx, llvm::SourceMgr &sm,
            const std::vector<const Cell *> &cells)
      : ctx(ctx), sm(sm), builder(&ctx), cells(cells) {}

  mlir::OwningOpRef<mlir::ModuleOp> run(const Module &module) {
    mlir::OwningOpRef<mlir::ModuleOp> theModule =
        mlir::ModuleOp::create(builder.getUnknownLoc());
    if (!checkCells())
      return nullptr;
    llvm::StringSet<> modelNames;
    for (const Model &model : module.models) {
      if (!modelNames.insert(model.name).second) {
        error(model.loc, "model '" + model.name + "' is defined twice");
        return nullptr;
      }
      builder.setInsertionPointToEnd(theModule->getBody());
      if (!genModel(model, /*lossMode=*/false))
        return nullptr;
      // A model with a loss also gets `<Name>_loss`: the same body, returning
      // the loss, for loom-differentiate to derive the training step from.
      if (!model.loss && !model.train.empty()) {
        error(model.train[0].loc,
              "training settings need a loss (add a line like `loss "
              "cross_entropy(logits, targets)`)");
        return nullptr;
      }
      if (model.loss && !genModel(model, /*lossMode=*/true))
        return nullptr;
    }
    if (mlir::failed(mlir::verify(*theModule))) {
      // The checks above should make this unreachable; if not, the message
      // printed by the verifier names the op.
      return nullptr;
    }
    return theModule;
  }

private:
  mlir::MLIRContext &ctx;
  llvm::SourceMgr &sm;
  mlir::OpBuilder builder;
  const std::vector<const Cell *> &cells;
  bool failed = false;

  // Per-model state.
  std::map<std::string, int64_t> constants;
  std::map<std::string, MVal> vars;
  std::map<std::string, mlir::RankedTensorType> params;
  llvm::StringSet<> layerNames;
  // Loss mode only: the entry block (for the dropout key argument), the key,
  // the next dropout stream, and the recurrent states to carry between
  // training steps (input argument number, final-state value).
  mlir::Block *entryBlock = nullptr;
  bool inLossMode = false;
  mlir::Value dropoutKey;
  int64_t dropoutStreams = 0;
  std::vector<std::pair<unsigned, mlir::Value>> carries;

  /// A loom.dropout of `x`. In the loss function it takes the training key
  /// (an extra `dropout_key : i64[2]` argument, created on first use) and a
  /// stream of its own; in the model function it is the identity.
  mlir::Value makeDropout(mlir::Location l, mlir::Value x, double p) {
    if (inLossMode && !dropoutKey)
      dropoutKey = entryBlock->addArgument(
          mlir::RankedTensorType::get({2}, builder.getI64Type()), l);
    int64_t stream = inLossMode ? dropoutStreams++ : 0;
    return DropoutOp::create(builder, l, x.getType(), x,
                             inLossMode ? dropoutKey : mlir::Value(),
                             builder.getF32FloatAttr(static_cast<float>(p)),
                             builder.getI64IntegerAttr(stream));
  }

  bool error(SMLoc loc, const Twine &msg) {
    if (!failed)
      printDiagnostic(sm, loc, llvm::SourceMgr::DK_Error, msg);
    failed = true;
    return false;
  }
  void note(SMLoc loc, const Twine &msg) {
    printDiagnostic(sm, loc, llvm::SourceMgr::DK_Note, msg);
  }

  mlir::Location loc(SMLoc l) {
    if (!l.isValid())
      return builder.getUnknownLoc();
    unsigned buf = sm.FindBufferContainingLoc(l);
    if (!buf)
      return builder.getUnknownLoc();
    auto [line, col] = sm.getLineAndColumn(l, buf);
    return mlir::FileLineColLoc::get(
        &ctx, sm.getMemoryBuffer(buf)->getBufferIdentifier(), line, col);
  }

  mlir::Type f32() { return builder.getF32Type(); }
  mlir::RankedTensorType tensorType(const std::vector<Dim> &shape,
                                    mlir::Type elem) {
    llvm::SmallVector<int64_t> dims;
    for (const Dim &d : shape)
      dims.push_back(d.size);
    return mlir::RankedTensorType::get(dims, elem);
  }

  //===--------------------------------------------------------------------===//
  // Cells
  //===--------------------------------------------------------------------===//

  /// Options of a cell as users see them: declared ones, or the size symbols
  /// of its states in order of first appearance when it declares none.
  static std::vector<CellOption> optionsOf(const Cell &cell) {
    if (cell.hasOptionList)
      return cell.options;
    std::vector<CellOption> opts;
    llvm::StringSet<> seen;
    std::string inputSym;
    if (cell.input.shape.dims[0].kind == DimExpr::Symbol)
      inputSym = cell.input.shape.dims[0].symbol;
    std::function<void(const DimExpr &)> visit = [&](const DimExpr &d) {
      if (d.kind == DimExpr::Symbol) {
        if (d.symbol != inputSym && seen.insert(d.symbol).second) {
          CellOption o;
          o.name = o.symbol = d.symbol;
          o.loc = d.loc;
          opts.push_back(o);
        }
        return;
      }
      for (const DimExpr &op : d.operands)
        visit(op);
    };
    for (const CellArg &s : cell.states)
      visit(s.shape.dims[0]);
    return opts;
  }

  static bool isBuiltinLayer(StringRef name) {
    return name == "embedding" || name == "linear" || name == "layernorm" ||
           name == "dropout" || name == "softmax" || name == "log_softmax" ||
           name == "concat";
  }

  /// Every size name in `d` must be the input size or a size option.
  bool checkDimSymbols(const DimExpr &d, const Cell &cell,
                       const llvm::StringSet<> &known) {
    if (d.kind == DimExpr::Symbol) {
      if (known.contains(d.symbol))
        return true;
      std::string list;
      for (const auto &k : known)
        list += (list.empty() ? "" : ", ") + k.getKey().str();
      return error(d.loc, "unknown size '" + d.symbol + "' in cell '" +
                              cell.name + "' (its sizes: " + list + ")");
    }
    for (const DimExpr &o : d.operands)
      if (!checkDimSymbols(o, cell, known))
        return false;
    return true;
  }

  bool checkCells() {
    for (const Cell *cell : cells) {
      if (isBuiltinLayer(cell->name))
        return error(cell->loc, "'" + cell->name +
                                    "' is a built-in layer; name the cell "
                                    "differently");
      if (cell->input.shape.dims[0].kind != DimExpr::Symbol)
        return error(cell->input.shape.loc,
                     "the input size of a cell must be a size name, like x[I]");
      const std::string &inputSym = cell->input.shape.dims[0].symbol;
      llvm::StringSet<> optionNames, symbols, sizeSymbols;
      for (const CellOption &o : optionsOf(*cell)) {
        if (!optionNames.insert(o.name).second)
          return error(o.loc, "option '" + o.name + "' of cell '" + cell->name +
                                  "' is declared twice");
        if (o.symbol == inputSym || !symbols.insert(o.symbol).second)
          return error(o.loc, "symbol '" + o.symbol + "' of cell '" +
                                  cell->name + "' is declared twice");
        if (o.isFunction && !isKnownFunction(o.defaultFunction))
          return error(o.loc, "unknown function '" + o.defaultFunction +
                                  "' as the default of option '" + o.name +
                                  "' (known: sigmoid, tanh, relu, exp)");
        if (!o.isFunction)
          sizeSymbols.insert(o.symbol);
      }
      for (const CellArg &s : cell->states) {
        if (containsSymbol(s.shape.dims[0], inputSym))
          return error(s.shape.loc,
                       "a state size must not depend on the input size '" +
                           inputSym + "'");
        if (!checkDimSymbols(s.shape.dims[0], *cell, sizeSymbols))
          return false;
      }
      sizeSymbols.insert(inputSym);
      for (const ParamDecl &p : cell->params) {
        if (p.shape.dims.size() > 2)
          return error(p.shape.loc, "a cell parameter is a vector [N] or a "
                                    "matrix [M, N], found " +
                                        Twine(p.shape.dims.size()) +
                                        " dimensions");
        for (const DimExpr &d : p.shape.dims)
          if (!checkDimSymbols(d, *cell, sizeSymbols))
            return false;
      }
      llvm::StringSet<> names;
      names.insert(cell->input.name);
      for (const CellArg &s : cell->states)
        if (!names.insert(s.name).second)
          return error(s.loc, "argument '" + s.name + "' of cell '" +
                                  cell->name + "' is declared twice");
      if (!cell->results.empty()) {
        if (cell->results.size() != cell->states.size())
          return error(cell->results.front().second,
                       "the results of cell '" + cell->name +
                           "' must list its " + Twine(cell->states.size()) +
                           " states in order, found " +
                           Twine(cell->results.size()));
        for (size_t i = 0; i < cell->results.size(); ++i)
          if (cell->results[i].first != cell->states[i].name)
            return error(cell->results[i].second,
                         "result " + Twine(i) + " of cell '" + cell->name +
                             "' must be its state '" + cell->states[i].name +
                             "' (results list the states in order)");
      }
      for (const ParamDecl &p : cell->params)
        if (!names.insert(p.name).second)
          return error(p.loc, "parameter '" + p.name + "' of cell '" +
                                  cell->name + "' clashes with another name");
      // Two overloads with the same option set would be ambiguous.
      for (const Cell *other : cells) {
        if (other == cell)
          break;
        if (other->name != cell->name)
          continue;
        auto a = optionsOf(*cell), b = optionsOf(*other);
        llvm::StringSet<> an, bn;
        for (auto &o : a)
          an.insert(o.name);
        for (auto &o : b)
          bn.insert(o.name);
        bool same =
            an.size() == bn.size() && llvm::all_of(an, [&](const auto &e) {
              return bn.contains(e.getKey());
            });
        if (same) {
          error(cell->loc, "cell '" + cell->name +
                               "' is already defined with the same options");
          note(other->loc, "previous definition is here");
          return false;
        }
      }
    }
    return true;
  }

  /// Evaluates a dimension expression with the bound sizes.
  std::optional<int64_t> evalDim(const DimExpr &d,
                                 const llvm::StringMap<int64_t> &sizes) {
    switch (d.kind) {
    case DimExpr::Const:
      return d.value;
    case DimExpr::Symbol: {
      auto it = sizes.find(d.symbol);
      if (it == sizes.end()) {
        error(d.loc, "unknown size '" + d.symbol + "'");
        return std::nullopt;
      }
      return it->second;
    }
    case DimExpr::Mul:
    case DimExpr::Add: {
      auto a = evalDim(d.operands[0], sizes);
      if (!a)
        return std::nullopt;
      auto b = evalDim(d.operands[1], sizes);
      if (!b)
        return std::nullopt;
      int64_t r;
      bool overflow = d.kind == DimExpr::Mul
                          ? __builtin_mul_overflow(*a, *b, &r)
                          : __builtin_add_overflow(*a, *b, &r);
      if (overflow || r > kMaxSize) {
        error(d.loc, "size " + Twine(*a) +
                         (d.kind == DimExpr::Mul ? " * " : " + ") + Twine(*b) +
                         " is too large (the limit is " + Twine(kMaxSize) +
                         ")");
        return std::nullopt;
      }
      return r;
    }
    }
    return std::nullopt;
  }

  /// One instance of a cell: its parameters' types and bound sizes.
  struct CellInstance {
    const Cell *cell;
    llvm::StringMap<int64_t> sizes;
    llvm::StringMap<std::string> functions; // function options
    std::vector<int64_t> stateSizes;
  };

  static bool isKnownFunction(StringRef f) {
    return f == "sigmoid" || f == "tanh" || f == "relu" || f == "exp" ||
           f == "sqrt" || f == "abs";
  }

  mlir::RankedTensorType batchedVec(int64_t n) {
    return mlir::RankedTensorType::get({mlir::ShapedType::kDynamic, n}, f32());
  }
  mlir::RankedTensorType typeOf(const CVal &v) {
    llvm::SmallVector<int64_t> dims;
    if (v.batched)
      dims.push_back(mlir::ShapedType::kDynamic);
    if (v.kind == CVal::Matrix)
      dims.push_back(v.rows);
    if (v.kind != CVal::Scalar)
      dims.push_back(v.cols);
    return mlir::RankedTensorType::get(dims, f32());
  }

  std::optional<CVal> genCellExpr(const Expr &e, llvm::StringMap<CVal> &env,
                                  const CellInstance &inst) {
    mlir::Location l = loc(e.loc);
    switch (e.kind) {
    case Expr::Number: {
      CVal v;
      v.kind = CVal::Scalar;
      auto type = mlir::RankedTensorType::get({}, f32());
      v.value = mlir::arith::ConstantOp::create(
          builder, l, type,
          mlir::DenseElementsAttr::get(type, static_cast<float>(e.number)));
      return v;
    }
    case Expr::Name: {
      auto it = env.find(e.name);
      if (it == env.end()) {
        if (inst.functions.count(e.name))
          error(e.loc, "'" + e.name + "' is a function; call it");
        else
          error(e.loc, "unknown name '" + e.name + "' in cell '" +
                           inst.cell->name + "'");
        return std::nullopt;
      }
      return it->second;
    }
    case Expr::Unary: {
      auto a = genCellExpr(*e.operands[0], env, inst);
      if (!a || !requireElementwise(*a, e.operands[0]->loc))
        return std::nullopt;
      CVal r = *a;
      r.value = NegOp::create(builder, l, a->value);
      return r;
    }
    case Expr::Binary:
      return genCellBinary(e, env, inst);
    case Expr::Call:
      return genCellCall(e, env, inst);
    case Expr::String:
    case Expr::ParamRef:
    case Expr::Index:
    case Expr::Tuple:
      break;
    }
    error(e.loc, "this expression is not allowed in a cell");
    return std::nullopt;
  }

  bool requireElementwise(const CVal &v, SMLoc at) {
    if (v.kind == CVal::Scalar || v.kind == CVal::Vector)
      return true;
    return error(at,
                 "expected a vector or a scalar here, found " + v.describe());
  }

  /// The loom op of an arithmetic operator: + - * /.
  mlir::Value binaryOp(char op, mlir::Location l, mlir::Type t, mlir::Value a,
                       mlir::Value b) {
    switch (op) {
    case '+':
      return AddOp::create(builder, l, t, a, b);
    case '-':
      return SubOp::create(builder, l, t, a, b);
    case '*':
      return MulOp::create(builder, l, t, a, b);
    default:
      return DivOp::create(builder, l, t, a, b);
    }
  }

  std::optional<CVal> genCellBinary(const Expr &e, llvm::StringMap<CVal> &env,
                                    const CellInstance &inst) {
    auto a = genCellExpr(*e.operands[0], env, inst);
    if (!a)
      return std::nullopt;
    auto b = genCellExpr(*e.operands[1], env, inst);
    if (!b)
      return std::nullopt;
    mlir::Location l = loc(e.loc);
    if (e.op == '@') {
      if (a->kind != CVal::Matrix) {
        error(e.operands[0]->loc,
              "the left side of '@' must be a matrix parameter, found " +
                  a->describe());
        return std::nullopt;
      }
      if (b->kind != CVal::Vector) {
        error(e.operands[1]->loc,
              "the right side of '@' must be a vector, found " + b->describe());
        return std::nullopt;
      }
      if (a->cols != b->cols) {
        error(e.loc, "matrix [" + Twine(a->rows) + ", " + Twine(a->cols) +
                         "] cannot multiply a vector [" + Twine(b->cols) +
                         "]: sizes " + Twine(a->cols) + " and " +
                         Twine(b->cols) + " differ");
        return std::nullopt;
      }
      CVal r;
      r.kind = CVal::Vector;
      r.batched = b->batched;
      r.cols = a->rows;
      r.value = LinearOp::create(builder, l, typeOf(r), b->value, a->value);
      return r;
    }
    if (!requireElementwise(*a, e.operands[0]->loc) ||
        !requireElementwise(*b, e.operands[1]->loc))
      return std::nullopt;
    if (a->kind == CVal::Vector && b->kind == CVal::Vector &&
        a->cols != b->cols) {
      error(e.loc, "operands of '" + Twine(e.op) + "' have different sizes: [" +
                       Twine(a->cols) + "] and [" + Twine(b->cols) + "]");
      return std::nullopt;
    }
    CVal r;
    r.kind = (a->kind == CVal::Vector || b->kind == CVal::Vector)
                 ? CVal::Vector
                 : CVal::Scalar;
    r.cols = a->kind == CVal::Vector ? a->cols : b->cols;
    r.batched = a->batched || b->batched;
    mlir::Type t = typeOf(r);
    r.value = binaryOp(e.op, l, t, a->value, b->value);
    return r;
  }

  std::optional<CVal> genCellCall(const Expr &e, llvm::StringMap<CVal> &env,
                                  const CellInstance &inst) {
    mlir::Location l = loc(e.loc);
    std::string fn = e.name;
    auto fit = inst.functions.find(fn);
    if (fit != inst.functions.end())
      fn = fit->second;
    if (!e.keywords.empty()) {
      error(e.keywords[0].loc, "'" + e.name + "' takes no options in a cell");
      return std::nullopt;
    }
    std::vector<CVal> args;
    for (const ExprPtr &a : e.operands) {
      // split's part count is a number, not a tensor
      if (fn == "split" && &a != &e.operands.front())
        break;
      auto v = genCellExpr(*a, env, inst);
      if (!v)
        return std::nullopt;
      args.push_back(*v);
    }
    if (isKnownFunction(fn)) {
      if (args.size() != 1) {
        error(e.loc, "'" + e.name + "' takes one argument, got " +
                         Twine(e.operands.size()));
        return std::nullopt;
      }
      if (!requireElementwise(args[0], e.operands[0]->loc))
        return std::nullopt;
      CVal r = args[0];
      if (fn == "sigmoid")
        r.value = SigmoidOp::create(builder, l, args[0].value);
      else if (fn == "tanh")
        r.value = TanhOp::create(builder, l, args[0].value);
      else if (fn == "relu")
        r.value = ReluOp::create(builder, l, args[0].value);
      else if (fn == "sqrt")
        r.value = SqrtOp::create(builder, l, args[0].value);
      else if (fn == "abs")
        r.value = AbsOp::create(builder, l, args[0].value);
      else
        r.value = ExpOp::create(builder, l, args[0].value);
      return r;
    }
    if (fn == "split") {
      if (e.operands.size() != 2 || e.operands[1]->kind != Expr::Number ||
          !e.operands[1]->isInteger) {
        error(e.loc, "split takes a vector and a number of parts: split(v, 4)");
        return std::nullopt;
      }
      const CVal &v = args[0];
      if (v.kind != CVal::Vector) {
        error(e.operands[0]->loc,
              "split needs a vector, found " + v.describe());
        return std::nullopt;
      }
      double n = e.operands[1]->number;
      int64_t parts = n >= 1 && n <= 1024 ? static_cast<int64_t>(n) : 0;
      if (parts < 1 || v.cols % parts != 0) {
        error(e.operands[1]->loc,
              "cannot split a vector [" + Twine(v.cols) + "] into " +
                  Twine(static_cast<int64_t>(std::min(n, 1e18))) +
                  " equal parts");
        return std::nullopt;
      }
      CVal part;
      part.kind = CVal::Vector;
      part.batched = v.batched;
      part.cols = v.cols / parts;
      llvm::SmallVector<mlir::Type> types(parts, typeOf(part));
      auto op = SplitOp::create(builder, l, types, v.value);
      CVal tuple;
      tuple.kind = CVal::Tuple;
      for (mlir::Value r : op.getResults()) {
        part.value = r;
        tuple.elements.push_back(part);
      }
      return tuple;
    }
    if (fn == "layernorm")
      return genCellLayerNorm(e, args);
    if (fn == "concat") {
      if (args.empty()) {
        error(e.loc, "concat needs at least one vector");
        return std::nullopt;
      }
      CVal r;
      r.kind = CVal::Vector;
      bool batched =
          llvm::any_of(args, [](const CVal &v) { return v.batched; });
      llvm::SmallVector<mlir::Value> values;
      for (size_t i = 0; i < args.size(); ++i) {
        if (args[i].kind != CVal::Vector) {
          error(e.operands[i]->loc,
                "concat needs vectors, found " + args[i].describe());
          return std::nullopt;
        }
        if (batched && !args[i].batched) {
          error(e.operands[i]->loc, "concat of a parameter with a per-sample "
                                    "value is not supported");
          return std::nullopt;
        }
        r.cols += args[i].cols;
        values.push_back(args[i].value);
      }
      r.batched = batched;
      r.value = ConcatOp::create(builder, l, typeOf(r), values);
      return r;
    }
    error(e.loc, "unknown function '" + e.name +
                     "' in a cell (known: sigmoid, tanh, relu, exp, sqrt, "
                     "abs, split, concat, layernorm)");
    return std::nullopt;
  }

  /// `layernorm(v, weight, bias)` in a cell: `nn.LayerNorm`'s normalization of
  /// a per-sample vector with the given parameter vectors (epsilon 1e-5).
  std::optional<CVal> genCellLayerNorm(const Expr &e,
                                       const std::vector<CVal> &args) {
    auto what = [](const CVal &c) {
      return c.kind == CVal::Vector && !c.batched
                 ? "a parameter vector [" + std::to_string(c.cols) + "]"
                 : c.describe();
    };
    if (args.size() != 3) {
      error(e.loc, "layernorm takes a vector, a weight and a bias: "
                   "layernorm(v, weight, bias)");
      return std::nullopt;
    }
    const CVal &v = args[0];
    if (v.kind != CVal::Vector || !v.batched) {
      error(e.operands[0]->loc,
            "layernorm normalizes a per-sample vector, found " + what(v));
      return std::nullopt;
    }
    for (size_t i = 1; i < 3; ++i)
      if (args[i].kind != CVal::Vector || args[i].batched ||
          args[i].cols != v.cols) {
        error(e.operands[i]->loc,
              "layernorm's " + Twine(i == 1 ? "weight" : "bias") +
                  " must be a parameter vector [" + Twine(v.cols) +
                  "], found " + what(args[i]));
        return std::nullopt;
      }
    CVal r = v;
    r.value = LayerNormOp::create(builder, loc(e.loc), v.value.getType(),
                                  v.value, args[1].value, args[2].value,
                                  builder.getF32FloatAttr(1e-5f));
    return r;
  }

  bool bindCellPattern(const Pattern &p, const CVal &v,
                       llvm::StringMap<CVal> &env, const CellInstance &inst) {
    if (!p.isTuple()) {
      if (v.kind == CVal::Tuple)
        return error(p.loc, "cannot assign " + v.describe() + " to one name");
      if (p.name == "_")
        return true;
      for (const ParamDecl &pd : inst.cell->params)
        if (pd.name == p.name)
          return error(p.loc, "cannot assign to parameter '" + p.name + "'");
      if (p.name == inst.cell->input.name)
        return error(p.loc, "cannot assign to the step input '" + p.name + "'");
      env[p.name] = v;
      return true;
    }
    if (v.kind != CVal::Tuple || v.elements.size() != p.elements.size())
      return error(p.loc, "cannot assign " + v.describe() + " to " +
                              Twine(p.elements.size()) + " names");
    for (size_t i = 0; i < p.elements.size(); ++i)
      if (!bindCellPattern(p.elements[i], v.elements[i], env, inst))
        return false;
    return true;
  }

  /// Emits the step of `inst` into the current block, whose arguments are
  /// the step input and the states. Returns the new states, or failure.
  std::optional<llvm::SmallVector<mlir::Value>>
  genCellBody(const CellInstance &inst, mlir::Block &block,
              const llvm::StringMap<mlir::Value> &paramValues) {
    const Cell &cell = *inst.cell;
    llvm::StringMap<CVal> env;
    CVal x;
    x.batched = true;
    x.cols = inst.sizes.lookup(cell.input.shape.dims[0].symbol);
    x.value = block.getArgument(0);
    env[cell.input.name] = x;
    for (size_t i = 0; i < cell.states.size(); ++i) {
      CVal s;
      s.batched = true;
      s.cols = inst.stateSizes[i];
      s.value = block.getArgument(1 + i);
      env[cell.states[i].name] = s;
    }
    for (const ParamDecl &p : cell.params) {
      CVal v;
      mlir::Value value = paramValues.lookup(p.name);
      auto t = mlir::cast<mlir::RankedTensorType>(value.getType());
      v.value = value;
      if (t.getRank() == 2) {
        v.kind = CVal::Matrix;
        v.rows = t.getDimSize(0);
        v.cols = t.getDimSize(1);
      } else {
        v.cols = t.getDimSize(0);
      }
      env[p.name] = v;
    }
    for (const Assign &a : cell.body) {
      auto v = genCellExpr(*a.value, env, inst);
      if (!v || !bindCellPattern(a.target, *v, env, inst))
        return std::nullopt;
    }
    llvm::SmallVector<mlir::Value> next;
    for (size_t i = 0; i < cell.states.size(); ++i) {
      const CVal &v = env[cell.states[i].name];
      if (v.kind != CVal::Vector || v.cols != inst.stateSizes[i]) {
        error(cell.states[i].loc,
              "state '" + cell.states[i].name + "' of cell '" + cell.name +
                  "' is declared [" + Twine(inst.stateSizes[i]) +
                  "] but the step leaves it " + v.describe());
        return std::nullopt;
      }
      mlir::Value value = v.value;
      if (!v.batched) {
        error(cell.states[i].loc,
              "state '" + cell.states[i].name +
                  "' must depend on the input or the states, not only on "
                  "parameters");
        return std::nullopt;
      }
      next.push_back(value);
    }
    return next;
  }

  //===--------------------------------------------------------------------===//
  // Models
  //===--------------------------------------------------------------------===//

  bool genModel(const Model &model, bool lossMode) {
    constants.clear();
    vars.clear();
    params.clear();
    layerNames.clear();
    inLossMode = lossMode;
    dropoutKey = nullptr;
    dropoutStreams = 0;
    carries.clear();
    for (const ModelConst &c : model.constants) {
      if (constants.count(c.name))
        return error(c.loc, "constant '" + c.name + "' is defined twice");
      constants[c.name] = c.value;
    }

    // Inputs: the function's arguments.
    llvm::SmallVector<mlir::Type> argTypes;
    std::vector<std::vector<Dim>> argShapes;
    llvm::StringSet<> inputNames;
    for (const ModelInput &in : model.inputs) {
      if (constants.count(in.name))
        return error(in.loc, "input '" + in.name +
                                 "' has the name of a constant of the model");
      if (!inputNames.insert(in.name).second)
        return error(in.loc, "input '" + in.name + "' is already defined");
      mlir::Type elem;
      if (in.dtype == "f32")
        elem = f32();
      else if (in.dtype == "i64")
        elem = builder.getI64Type();
      else
        return error(in.dtypeLoc, "unknown element type '" + in.dtype +
                                      "' (inputs are f32 or i64)");
      std::vector<Dim> shape;
      for (const DimExpr &d : in.shape.dims) {
        Dim dim;
        if (d.kind == DimExpr::Symbol && !constants.count(d.symbol)) {
          dim.symbol = d.symbol;
        } else {
          llvm::StringMap<int64_t> sizes;
          for (auto &[k, v] : constants)
            sizes[k] = v;
          if (const DimExpr *sym = findRunTimeSymbol(d))
            return error(sym->loc, "run-time size '" + sym->symbol +
                                       "' cannot be part of a dimension "
                                       "expression (only model constants "
                                       "can)");
          auto v = evalDim(d, sizes);
          if (!v)
            return false;
          if (*v < 1)
            return error(d.loc, "dimension must be at least 1");
          dim.size = *v;
        }
        shape.push_back(dim);
      }
      argTypes.push_back(tensorType(shape, elem));
      argShapes.push_back(shape);
    }
    auto funcType = builder.getFunctionType(argTypes, {});
    auto func = mlir::func::FuncOp::create(
        builder, loc(model.loc), lossMode ? model.name + "_loss" : model.name,
        funcType);
    func->setAttr(lossMode ? kLossAttr : kModelAttr, builder.getUnitAttr());
    mlir::Block *entry = func.addEntryBlock();
    entryBlock = entry;
    builder.setInsertionPointToStart(entry);
    for (size_t i = 0; i < model.inputs.size(); ++i) {
      MVal v;
      v.value = entry->getArgument(i);
      v.shape = argShapes[i];
      v.isInt = model.inputs[i].dtype == "i64";
      vars[model.inputs[i].name] = v;
      func.setArgAttr(i, kNameAttr,
                      builder.getStringAttr(model.inputs[i].name));
      llvm::SmallVector<mlir::Attribute> dims;
      for (const Dim &d : argShapes[i])
        dims.push_back(builder.getStringAttr(
            d.isStatic() ? std::to_string(d.size) : d.symbol));
      func.setArgAttr(i, kDimsAttr, builder.getArrayAttr(dims));
    }

    for (const Assign &a : model.body) {
      auto v = genModelExpr(*a.value);
      if (!v || !bindModelPattern(a.target, *v))
        return false;
    }

    if (lossMode) {
      auto l = genModelExpr(*model.loss);
      if (!l)
        return false;
      if (l->kind != MVal::Tensor || l->isInt || !l->shape.empty())
        return error(model.loss->loc,
                     "the loss must be a scalar, like cross_entropy(logits, "
                     "targets); found " +
                         describe(*l));
      // Results: the loss, then the final value of every carried state.
      llvm::SmallVector<mlir::Value> results{l->value};
      for (const auto &c : carries)
        results.push_back(c.second);
      mlir::func::ReturnOp::create(builder, loc(model.lossLoc), results);
      if (dropoutKey) {
        argTypes.push_back(dropoutKey.getType());
        func.setType(builder.getFunctionType(argTypes, {}));
        unsigned k = argTypes.size() - 1;
        func.setArgAttr(k, kNameAttr, builder.getStringAttr(kDropoutKeyName));
        func.setArgAttr(k, kDimsAttr,
                        builder.getArrayAttr({builder.getStringAttr("2")}));
      }
      llvm::SmallVector<mlir::Type> resultTypes;
      for (mlir::Value v : results)
        resultTypes.push_back(v.getType());
      func.setType(builder.getFunctionType(argTypes, resultTypes));
      func.setResultAttr(0, kNameAttr, builder.getStringAttr("loss"));
      if (!model.train.empty()) {
        llvm::SmallVector<mlir::NamedAttribute> settings;
        for (const TrainSetting &st : model.train)
          settings.push_back(builder.getNamedAttr(
              st.key,
              st.kind == TrainSetting::Name
                  ? mlir::Attribute(builder.getStringAttr(st.name))
                  : mlir::Attribute(builder.getF64FloatAttr(st.number))));
        func->setAttr(kTrainAttr, builder.getDictionaryAttr(settings));
      }
      for (auto [k, c] : llvm::enumerate(carries)) {
        func.setResultAttr(k + 1, kNameAttr,
                           builder.getStringAttr(model.inputs[c.first].name));
        func.setResultAttr(k + 1, kCarryAttr, builder.getUnitAttr());
      }
      builder.setInsertionPointAfter(func);
      return true;
    }
    if (model.outputs.empty())
      return error(model.loc, "model '" + model.name +
                                  "' declares no outputs (add `output NAME`)");
    llvm::SmallVector<mlir::Value> results;
    llvm::StringSet<> outputNames;
    for (const auto &[name, at] : model.outputs) {
      auto it = vars.find(name);
      if (it == vars.end() && constants.count(name))
        return error(at, "output '" + name +
                             "' is a constant of the model, not a tensor");
      if (it == vars.end())
        return error(at, "unknown output '" + name + "'");
      if (!outputNames.insert(name).second)
        return error(at, "output '" + name + "' is listed twice");
      if (it->second.kind != MVal::Tensor)
        return error(at, "output '" + name + "' is " + describe(it->second) +
                             ", not a tensor" +
                             (it->second.kind == MVal::Tuple
                                  ? "; name its parts with a pattern like "
                                    "`y, (h_n, c_n) = ...`"
                                  : ""));
      results.push_back(it->second.value);
    }
    mlir::func::ReturnOp::create(builder, loc(model.loc), results);
    llvm::SmallVector<mlir::Type> resultTypes;
    for (mlir::Value r : results)
      resultTypes.push_back(r.getType());
    func.setType(builder.getFunctionType(argTypes, resultTypes));
    for (size_t i = 0; i < model.outputs.size(); ++i) {
      func.setResultAttr(i, kNameAttr,
                         builder.getStringAttr(model.outputs[i].first));
      for (const auto &c : carries)
        if (c.second == results[i])
          func.setResultAttr(i, kStateOfAttr,
                             builder.getStringAttr(model.inputs[c.first].name));
    }
    builder.setInsertionPointAfter(func);
    return true;
  }

  /// The first size name in `d` that is not a model constant.
  const DimExpr *findRunTimeSymbol(const DimExpr &d) {
    if (d.kind == DimExpr::Symbol)
      return constants.count(d.symbol) ? nullptr : &d;
    for (const DimExpr &o : d.operands)
      if (const DimExpr *s = findRunTimeSymbol(o))
        return s;
    return nullptr;
  }

  bool bindModelPattern(const Pattern &p, const MVal &v) {
    if (!p.isTuple()) {
      if (p.name == "_")
        return true;
      if (constants.count(p.name))
        return error(p.loc, "'" + p.name + "' is a constant of the model");
      vars[p.name] = v;
      return true;
    }
    if (v.kind != MVal::Tuple || v.elements.size() != p.elements.size())
      return error(p.loc, "cannot assign " + describe(v) + " to " +
                              Twine(p.elements.size()) + " names");
    for (size_t i = 0; i < p.elements.size(); ++i)
      if (!bindModelPattern(p.elements[i], v.elements[i]))
        return false;
    return true;
  }

  static std::string formatNumber(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }

  static std::string describe(const MVal &v) {
    switch (v.kind) {
    case MVal::Tensor:
      return std::string("a tensor ") + (v.isInt ? "i64" : "f32") +
             shapeString(v.shape);
    case MVal::Number:
      return "the number " + formatNumber(v.number);
    case MVal::Tuple:
      return "a group of " + std::to_string(v.elements.size()) + " values";
    }
    return "";
  }

  std::optional<MVal> genModelExpr(const Expr &e) {
    switch (e.kind) {
    case Expr::Number: {
      MVal v;
      v.kind = MVal::Number;
      v.number = e.number;
      v.isInt = e.isInteger;
      return v;
    }
    case Expr::Name: {
      auto c = constants.find(e.name);
      if (c != constants.end()) {
        MVal v;
        v.kind = MVal::Number;
        v.number = static_cast<double>(c->second);
        v.isInt = true;
        return v;
      }
      auto it = vars.find(e.name);
      if (it == vars.end()) {
        error(e.loc, "unknown name '" + e.name + "'");
        return std::nullopt;
      }
      return it->second;
    }
    case Expr::Tuple: {
      MVal t;
      t.kind = MVal::Tuple;
      for (const ExprPtr &op : e.operands) {
        auto v = genModelExpr(*op);
        if (!v)
          return std::nullopt;
        t.elements.push_back(*v);
      }
      return t;
    }
    case Expr::Index: {
      auto base = genModelExpr(*e.operands[0]);
      if (!base)
        return std::nullopt;
      if (base->kind == MVal::Tuple) {
        if (e.index < 0 || e.index >= (int64_t)base->elements.size()) {
          error(e.loc, "index " + Twine(e.index) + " is out of range for " +
                           describe(*base));
          return std::nullopt;
        }
        return base->elements[e.index];
      }
      if (base->kind != MVal::Tensor || base->shape.empty() || base->isInt) {
        error(e.loc, "cannot index " + describe(*base));
        return std::nullopt;
      }
      const Dim &d0 = base->shape[0];
      if (e.index < 0 || (d0.isStatic() && e.index >= d0.size)) {
        error(e.loc, "index " + Twine(e.index) + " is out of range for " +
                         describe(*base));
        return std::nullopt;
      }
      MVal r;
      r.shape.assign(base->shape.begin() + 1, base->shape.end());
      r.value = IndexOp::create(builder, loc(e.loc), tensorType(r.shape, f32()),
                                base->value, e.index);
      return r;
    }
    case Expr::Unary: {
      auto a = genModelExpr(*e.operands[0]);
      if (!a)
        return std::nullopt;
      if (a->kind == MVal::Number) {
        a->number = -a->number;
        return a;
      }
      if (!requireFloat(*a, e.operands[0]->loc))
        return std::nullopt;
      MVal r = *a;
      r.value = NegOp::create(builder, loc(e.loc), a->value);
      return r;
    }
    case Expr::Binary:
      return genModelBinary(e);
    case Expr::Call:
      return genModelCall(e);
    case Expr::ParamRef:
      error(e.loc, "a parameter reference like '" + e.name + "." + e.member +
                       "' is only allowed as a layer's weight option");
      return std::nullopt;
    case Expr::String:
      error(e.loc, "a string is only allowed as an option value");
      return std::nullopt;
    }
    return std::nullopt;
  }

  /// Feature sizes (last dimensions) shape parameters, so they must be
  /// fixed by the model rather than be run-time sizes like T or B.
  bool requireStaticFeatures(const MVal &v, SMLoc at, const Twine &what) {
    const Dim &d = v.shape.back();
    if (d.isStatic())
      return true;
    return error(at, what + " has the run-time size '" + d.symbol +
                         "' as its feature (last) dimension, in " +
                         describe(v) +
                         "; feature sizes must be numbers or model constants");
  }

  bool requireFloat(const MVal &v, SMLoc at) {
    if (v.kind == MVal::Tensor && !v.isInt)
      return true;
    return error(at, "expected a float tensor, found " + describe(v));
  }

  std::optional<MVal> genModelBinary(const Expr &e) {
    auto a = genModelExpr(*e.operands[0]);
    if (!a)
      return std::nullopt;
    auto b = genModelExpr(*e.operands[1]);
    if (!b)
      return std::nullopt;
    if (e.op == '@') {
      error(e.loc, "'@' is only allowed in cells; use a linear layer");
      return std::nullopt;
    }
    // Arithmetic on numbers is folded: `2 * hidden` is a number.
    if (a->kind == MVal::Number && b->kind == MVal::Number) {
      MVal r;
      r.kind = MVal::Number;
      r.isInt = a->isInt && b->isInt && e.op != '/';
      switch (e.op) {
      case '+':
        r.number = a->number + b->number;
        break;
      case '-':
        r.number = a->number - b->number;
        break;
      case '*':
        r.number = a->number * b->number;
        break;
      default:
        if (b->number == 0) {
          error(e.loc, "division by zero");
          return std::nullopt;
        }
        r.number = a->number / b->number;
        break;
      }
      return r;
    }
    // Numbers become rank-0 constants.
    auto lift = [&](MVal &v) {
      if (v.kind != MVal::Number)
        return;
      auto type = mlir::RankedTensorType::get({}, f32());
      v.kind = MVal::Tensor;
      v.value = mlir::arith::ConstantOp::create(
          builder, loc(e.loc), type,
          mlir::DenseElementsAttr::get(type, static_cast<float>(v.number)));
      v.isInt = false;
    };
    lift(*a);
    lift(*b);
    if (!requireFloat(*a, e.operands[0]->loc) ||
        !requireFloat(*b, e.operands[1]->loc))
      return std::nullopt;
    const MVal &lo = a->shape.size() >= b->shape.size() ? *a : *b;
    const MVal &sh = a->shape.size() >= b->shape.size() ? *b : *a;
    size_t off = lo.shape.size() - sh.shape.size();
    for (size_t i = 0; i < sh.shape.size(); ++i)
      if (lo.shape[off + i] != sh.shape[i]) {
        error(e.loc, "operand shapes " + shapeString(a->shape) + " and " +
                         shapeString(b->shape) + " do not match");
        return std::nullopt;
      }
    MVal r;
    r.shape = lo.shape;
    mlir::Type t = tensorType(r.shape, f32());
    mlir::Location l = loc(e.loc);
    r.value = binaryOp(e.op, l, t, a->value, b->value);
    return r;
  }

  /// Arguments of a layer call, by position or keyword, consumed as read so
  /// that leftovers can be reported.
  struct Args {
    const Expr &call;
    std::vector<bool> usedPos;
    std::vector<bool> usedKw;
    const KeywordArg *twice = nullptr; // given by position and by keyword
    explicit Args(const Expr &c)
        : call(c), usedPos(c.operands.size()), usedKw(c.keywords.size()) {}
    const Expr *get(size_t pos, StringRef kw) {
      for (size_t i = 0; i < call.keywords.size(); ++i)
        if (call.keywords[i].name == kw) {
          usedKw[i] = true;
          if (pos < call.operands.size()) {
            usedPos[pos] = true;
            if (!twice)
              twice = &call.keywords[i];
          }
          return call.keywords[i].value.get();
        }
      if (pos < call.operands.size()) {
        usedPos[pos] = true;
        return call.operands[pos].get();
      }
      return nullptr;
    }
    const Expr *keyword(StringRef kw) { return get(SIZE_MAX, kw); }
  };

  bool checkAllUsed(Args &args, const Twine &what) {
    if (args.twice)
      return error(args.twice->loc, "argument '" + args.twice->name + "' of " +
                                        what +
                                        " is given both by position and by "
                                        "keyword");
    for (size_t i = 0; i < args.usedPos.size(); ++i)
      if (!args.usedPos[i])
        return error(args.call.operands[i]->loc,
                     "too many arguments for " + what);
    for (size_t i = 0; i < args.usedKw.size(); ++i)
      if (!args.usedKw[i])
        return error(args.call.keywords[i].loc, "unknown option '" +
                                                    args.call.keywords[i].name +
                                                    "' for " + what);
    return true;
  }

  std::optional<int64_t> intArg(const Expr *e, StringRef what, int64_t min) {
    auto v = genModelExpr(*e);
    if (!v)
      return std::nullopt;
    if (v->kind != MVal::Number || !v->isInt) {
      error(e->loc, what + " must be an integer, found " + describe(*v));
      return std::nullopt;
    }
    if (v->number > double(kMaxSize)) {
      error(e->loc,
            what + " is too large (the limit is " + Twine(kMaxSize) + ")");
      return std::nullopt;
    }
    if (v->number < min) {
      error(e->loc, what + " must be at least " + Twine(min) + ", got " +
                        Twine(static_cast<int64_t>(v->number)));
      return std::nullopt;
    }
    return static_cast<int64_t>(v->number);
  }

  std::optional<bool> boolArg(const Expr *e, StringRef what) {
    if (e->kind == Expr::Name && (e->name == "true" || e->name == "false"))
      return e->name == "true";
    error(e->loc, what + " must be true or false");
    return std::nullopt;
  }

  std::optional<double> probArg(const Expr *e, StringRef what) {
    auto v = genModelExpr(*e);
    if (!v)
      return std::nullopt;
    if (v->kind != MVal::Number || v->number < 0 || v->number >= 1) {
      error(e->loc, what + " must be a number in [0, 1)");
      return std::nullopt;
    }
    return v->number;
  }

  std::optional<MVal> tensorArg(const Expr *e, StringRef what, bool isInt,
                                int minRank) {
    auto v = genModelExpr(*e);
    if (!v)
      return std::nullopt;
    if (v->kind != MVal::Tensor || v->isInt != isInt ||
        static_cast<int>(v->shape.size()) < minRank) {
      error(e->loc, what + " must be " + (isInt ? "an i64" : "an f32") +
                        " tensor of rank at least " + Twine(minRank) +
                        ", found " + describe(*v));
      return std::nullopt;
    }
    return v;
  }

  bool requireLabel(const Expr &call) {
    if (!call.label.empty())
      return true;
    return error(call.loc, "layer '" + call.name +
                               "' has parameters and needs a name: write `" +
                               "name: " + call.name + "(...)`");
  }

  /// A parameter, with how `loom init` initializes it as PyTorch would:
  /// "uniform:<bound>", "normal", "ones" or "zeros".
  std::optional<mlir::Value> param(SMLoc at, const std::string &name,
                                   llvm::ArrayRef<int64_t> shape,
                                   const std::string &init) {
    auto type = mlir::RankedTensorType::get(shape, f32());
    auto it = params.find(name);
    if (it != params.end() && it->second != type) {
      error(at, "parameter '" + name +
                    "' is already defined with another "
                    "shape");
      return std::nullopt;
    }
    params[name] = type;
    auto op =
        ParamOp::create(builder, loc(at), type, builder.getStringAttr(name));
    op->setAttr(kInitAttr, builder.getStringAttr(init));
    return op.getResult();
  }

  std::optional<MVal> genModelCall(const Expr &e) {
    if (!e.label.empty()) {
      if (!layerNames.insert(e.label).second) {
        error(e.labelLoc, "layer name '" + e.label + "' is used twice");
        return std::nullopt;
      }
    }
    mlir::Location l = loc(e.loc);
    Args args(e);
    StringRef fn = e.name;
    if (fn == "embedding") {
      if (!requireLabel(e))
        return std::nullopt;
      const Expr *ids = args.get(0, "input");
      const Expr *num = args.get(1, "num_embeddings");
      const Expr *dim = args.get(2, "embedding_dim");
      if (!ids || !num || !dim) {
        error(e.loc, "embedding takes (ids, num_embeddings, embedding_dim)");
        return std::nullopt;
      }
      auto idv = tensorArg(ids, "the ids of embedding", true, 1);
      if (!idv)
        return std::nullopt;
      auto n = intArg(num, "num_embeddings", 1);
      auto d = n ? intArg(dim, "embedding_dim", 1) : std::nullopt;
      if (!d || !checkAllUsed(args, "embedding"))
        return std::nullopt;
      auto w = param(e.loc, e.label + ".weight", {*n, *d}, "normal");
      if (!w)
        return std::nullopt;
      MVal r;
      r.shape = idv->shape;
      r.shape.push_back(Dim{*d, ""});
      r.value = EmbeddingOp::create(builder, l, tensorType(r.shape, f32()),
                                    idv->value, *w);
      return r;
    }
    if (fn == "linear") {
      if (!requireLabel(e))
        return std::nullopt;
      const Expr *xe = args.get(0, "input");
      const Expr *oe = args.get(1, "out_features");
      if (!xe || !oe) {
        error(e.loc, "linear takes (input, out_features)");
        return std::nullopt;
      }
      auto x = tensorArg(xe, "the input of linear", false, 1);
      if (!x || !requireStaticFeatures(*x, xe->loc, "the input of linear"))
        return std::nullopt;
      auto out = intArg(oe, "out_features", 1);
      if (!out)
        return std::nullopt;
      bool hasBias = true;
      if (const Expr *b = args.keyword("bias")) {
        auto v = boolArg(b, "bias");
        if (!v)
          return std::nullopt;
        hasBias = *v;
      }
      const Dim &in = x->shape.back();
      mlir::Value w;
      if (const Expr *tied = args.keyword("weight")) {
        if (tied->kind != Expr::ParamRef) {
          error(tied->loc, "weight must name another layer's parameter, like "
                           "encoder.weight");
          return std::nullopt;
        }
        std::string name = tied->name + "." + tied->member;
        auto it = params.find(name);
        if (it == params.end()) {
          error(tied->loc, "unknown parameter '" + name +
                               "' (a tied weight must be defined earlier)");
          return std::nullopt;
        }
        auto shape = it->second.getShape();
        if (shape.size() != 2 || shape[0] != *out || shape[1] != in.size) {
          error(tied->loc, "tied weight '" + name + "' has shape [" +
                               Twine(shape[0]) + ", " +
                               Twine(shape.size() > 1 ? shape[1] : 0) +
                               "] but this linear layer needs [" + Twine(*out) +
                               ", " + Twine(in.size) + "]");
          return std::nullopt;
        }
        auto v = param(tied->loc, name, shape, uniformInit(shape[1]));
        if (!v)
          return std::nullopt;
        w = *v;
      } else {
        auto v = param(e.loc, e.label + ".weight", {*out, in.size},
                       uniformInit(in.size));
        if (!v)
          return std::nullopt;
        w = *v;
      }
      if (!checkAllUsed(args, "linear"))
        return std::nullopt;
      MVal r;
      r.shape = x->shape;
      r.shape.back() = Dim{*out, ""};
      mlir::Type t = tensorType(r.shape, f32());
      r.value = LinearOp::create(builder, l, t, x->value, w);
      if (hasBias) {
        auto b = param(e.loc, e.label + ".bias", {*out}, uniformInit(in.size));
        if (!b)
          return std::nullopt;
        r.value = AddOp::create(builder, l, t, r.value, *b);
      }
      return r;
    }
    if (fn == "layernorm") {
      if (!requireLabel(e))
        return std::nullopt;
      const Expr *xe = args.get(0, "input");
      if (!xe) {
        error(e.loc, "layernorm takes (input)");
        return std::nullopt;
      }
      auto x = tensorArg(xe, "the input of layernorm", false, 1);
      if (!x || !requireStaticFeatures(*x, xe->loc, "the input of layernorm"))
        return std::nullopt;
      double eps = 1e-5;
      if (const Expr *ee = args.keyword("eps")) {
        auto v = genModelExpr(*ee);
        if (!v || v->kind != MVal::Number || v->number <= 0) {
          error(ee->loc, "eps must be a positive number");
          return std::nullopt;
        }
        eps = v->number;
      }
      if (!checkAllUsed(args, "layernorm"))
        return std::nullopt;
      int64_t f = x->shape.back().size;
      auto w = param(e.loc, e.label + ".weight", {f}, "ones");
      auto b = w ? param(e.loc, e.label + ".bias", {f}, "zeros") : std::nullopt;
      if (!b)
        return std::nullopt;
      MVal r = *x;
      r.value =
          LayerNormOp::create(builder, l, x->value.getType(), x->value, *w, *b,
                              builder.getF32FloatAttr(static_cast<float>(eps)));
      return r;
    }
    if (fn == "dropout" || fn == "softmax" || fn == "log_softmax") {
      if (!e.label.empty()) {
        error(e.labelLoc, "'" + fn + "' has no parameters and takes no name");
        return std::nullopt;
      }
      const Expr *xe = args.get(0, "input");
      if (!xe) {
        error(e.loc, "'" + fn + "' takes an input");
        return std::nullopt;
      }
      auto x = tensorArg(xe, "the input of " + fn.str(), false, 1);
      if (!x)
        return std::nullopt;
      MVal r = *x;
      if (fn == "dropout") {
        const Expr *pe = args.get(1, "p");
        double p = 0.5;
        if (pe) {
          auto v = probArg(pe, "the dropout probability");
          if (!v)
            return std::nullopt;
          p = *v;
        }
        if (!checkAllUsed(args, "dropout"))
          return std::nullopt;
        r.value = makeDropout(l, x->value, p);
        return r;
      }
      if (!checkAllUsed(args, fn))
        return std::nullopt;
      if (fn == "softmax")
        r.value = SoftmaxOp::create(builder, l, x->value);
      else
        r.value = LogSoftmaxOp::create(builder, l, x->value);
      return r;
    }
    if (fn == "cross_entropy" || fn == "nll") {
      if (!e.label.empty()) {
        error(e.labelLoc, "'" + fn + "' has no parameters and takes no name");
        return std::nullopt;
      }
      StringRef what = fn == "nll" ? "log-probabilities" : "logits";
      const Expr *le = args.get(0, "input");
      const Expr *te = args.get(1, "target");
      if (!le || !te) {
        error(e.loc, fn + " takes (" + what + ", targets)");
        return std::nullopt;
      }
      auto scores =
          tensorArg(le, "the " + what.str() + " of " + fn.str(), false, 1);
      if (!scores)
        return std::nullopt;
      auto targets = tensorArg(te, "the targets of " + fn.str(), true, 0);
      if (!targets)
        return std::nullopt;
      std::vector<Dim> lead(scores->shape.begin(), scores->shape.end() - 1);
      if (targets->shape != lead) {
        error(te->loc, "targets must have shape " + shapeString(lead) +
                           " (the shape of the " + what +
                           " without the class dimension), found " +
                           shapeString(targets->shape));
        return std::nullopt;
      }
      int64_t ignore = -100;
      if (const Expr *ie = args.keyword("ignore_index")) {
        auto v = genModelExpr(*ie);
        if (!v || v->kind != MVal::Number || !v->isInt) {
          error(ie->loc, "ignore_index must be an integer");
          return std::nullopt;
        }
        ignore = static_cast<int64_t>(v->number);
      }
      if (!checkAllUsed(args, fn))
        return std::nullopt;
      MVal r;
      auto scalar = mlir::RankedTensorType::get({}, f32());
      if (fn == "nll")
        r.value = NllOp::create(builder, l, scalar, scores->value,
                                targets->value, ignore);
      else
        r.value = CrossEntropyOp::create(builder, l, scalar, scores->value,
                                         targets->value, ignore);
      return r;
    }
    if (fn == "mse") {
      if (!e.label.empty()) {
        error(e.labelLoc, "'mse' has no parameters and takes no name");
        return std::nullopt;
      }
      const Expr *xe = args.get(0, "input");
      const Expr *ye = args.get(1, "target");
      if (!xe || !ye) {
        error(e.loc, "mse takes (input, target)");
        return std::nullopt;
      }
      auto x = tensorArg(xe, "the input of mse", false, 0);
      auto y = x ? tensorArg(ye, "the target of mse", false, 0) : std::nullopt;
      if (!y || !checkAllUsed(args, "mse"))
        return std::nullopt;
      if (x->shape != y->shape) {
        error(ye->loc, "the target of mse must have the input's shape " +
                           shapeString(x->shape) + ", found " +
                           shapeString(y->shape));
        return std::nullopt;
      }
      // mean((x - y)²), as nn.MSELoss() with reduction mean.
      mlir::Type t = x->value.getType();
      mlir::Value d = SubOp::create(builder, l, t, x->value, y->value);
      mlir::Value sq = MulOp::create(builder, l, t, d, d);
      MVal r;
      r.value = MeanOp::create(builder, l,
                               mlir::RankedTensorType::get({}, f32()), sq);
      return r;
    }
    if (fn == "concat") {
      if (!e.label.empty()) {
        error(e.labelLoc, "'concat' has no parameters and takes no name");
        return std::nullopt;
      }
      if (!e.keywords.empty()) {
        error(e.keywords[0].loc, "concat takes no options");
        return std::nullopt;
      }
      if (e.operands.empty()) {
        error(e.loc, "concat needs at least one tensor");
        return std::nullopt;
      }
      MVal r;
      llvm::SmallVector<mlir::Value> values;
      for (const ExprPtr &op : e.operands) {
        auto v = tensorArg(op.get(), "an input of concat", false, 1);
        if (!v || !requireStaticFeatures(*v, op->loc, "an input of concat"))
          return std::nullopt;
        if (r.shape.empty()) {
          r.shape = v->shape;
          r.shape.back().size = 0;
        } else {
          bool ok = v->shape.size() == r.shape.size();
          for (size_t i = 0; ok && i + 1 < r.shape.size(); ++i)
            ok = v->shape[i] == r.shape[i];
          if (!ok) {
            error(op->loc, "concat inputs must agree in all but the last "
                           "dimension, found " +
                               shapeString(v->shape));
            return std::nullopt;
          }
        }
        r.shape.back().size += v->shape.back().size;
        values.push_back(v->value);
      }
      r.value =
          ConcatOp::create(builder, l, tensorType(r.shape, f32()), values);
      return r;
    }
    // Everything else is a recurrent layer made of a cell.
    std::vector<const Cell *> overloads;
    for (const Cell *c : cells)
      if (c->name == fn)
        overloads.push_back(c);
    if (overloads.empty()) {
      error(e.loc, "unknown layer '" + fn +
                       "' (built-in layers: embedding, linear, layernorm, "
                       "dropout, softmax, log_softmax, concat, and the cells "
                       "rnn, lstm, gru or any cell defined in the file)");
      return std::nullopt;
    }
    return genRecurrent(e, overloads);
  }

  std::optional<MVal> genRecurrent(const Expr &e,
                                   const std::vector<const Cell *> &overloads) {
    if (!requireLabel(e))
      return std::nullopt;
    Args args(e);
    const Expr *xe = args.get(0, "input");
    if (!xe) {
      error(e.loc, "recurrent layer '" + e.name + "' needs an input sequence");
      return std::nullopt;
    }
    auto x = tensorArg(xe, "the input of " + e.name, false, 1);
    if (!x)
      return std::nullopt;
    if (x->shape.size() != 3) {
      error(xe->loc, "the input of " + e.name +
                         " must be a sequence [T, B, F], "
                         "found " +
                         describe(*x));
      return std::nullopt;
    }
    if (!requireStaticFeatures(*x, xe->loc, "the input of " + e.name))
      return std::nullopt;
    // Options every recurrent layer has.
    int64_t numLayers = 1;
    bool bidirectional = false, batchFirst = false;
    double dropout = 0;
    if (const Expr *v = args.keyword("layers")) {
      auto n = intArg(v, "layers", 1);
      if (!n)
        return std::nullopt;
      numLayers = *n;
      if (numLayers > 64) {
        error(v->loc, "layers must be at most 64");
        return std::nullopt;
      }
    }
    if (const Expr *v = args.keyword("bidirectional")) {
      auto b = boolArg(v, "bidirectional");
      if (!b)
        return std::nullopt;
      bidirectional = *b;
    }
    if (const Expr *v = args.keyword("batch_first")) {
      auto b = boolArg(v, "batch_first");
      if (!b)
        return std::nullopt;
      batchFirst = *b;
    }
    if (const Expr *v = args.keyword("dropout")) {
      auto p = probArg(v, "dropout");
      if (!p)
        return std::nullopt;
      dropout = *p;
    }
    const Expr *lengthsExpr = args.keyword("lengths");
    const Expr *stateExpr = args.keyword("state");

    // The cell's own options: positional after the input, or by keyword.
    const Cell *cell = nullptr;
    std::vector<std::pair<const CellOption *, const Expr *>> bound;
    {
      std::vector<const Cell *> matches;
      std::string why;
      for (const Cell *c : overloads) {
        std::vector<CellOption> opts = optionsOf(*c);
        size_t positional = e.operands.empty() ? 0 : e.operands.size() - 1;
        if (positional > opts.size()) {
          why = "too many arguments";
          continue;
        }
        bool ok = true;
        for (size_t i = 0; i < opts.size() && ok; ++i) {
          bool byKw = llvm::any_of(e.keywords, [&](const KeywordArg &k) {
            return k.name == opts[i].name;
          });
          if (i < positional && byKw) {
            why = "option '" + opts[i].name + "' given twice";
            ok = false;
          } else if (i >= positional && !byKw && !opts[i].isFunction) {
            why = "missing option '" + opts[i].name + "'";
            ok = false;
          }
        }
        for (const KeywordArg &k : e.keywords) {
          static const char *generic[] = {
              "input",   "layers",  "bidirectional", "batch_first",
              "dropout", "lengths", "state"};
          if (llvm::is_contained(generic, k.name))
            continue;
          if (!llvm::any_of(opts, [&](const CellOption &o) {
                return o.name == k.name;
              })) {
            why = "unknown option '" + k.name + "'";
            ok = false;
          }
        }
        if (ok)
          matches.push_back(c);
      }
      if (matches.empty()) {
        if (overloads.size() == 1) {
          error(e.loc, "cannot use cell '" + e.name + "': " + why);
          note(overloads[0]->loc, "cell '" + e.name + "' is defined here");
        } else {
          error(e.loc, "no variant of '" + e.name + "' takes these options (" +
                           why + ")");
          for (const Cell *c : overloads)
            note(c->loc, "candidate defined here");
        }
        return std::nullopt;
      }
      if (matches.size() > 1) {
        error(e.loc, "ambiguous use of '" + e.name +
                         "': several variants "
                         "take these options");
        for (const Cell *c : matches)
          note(c->loc, "candidate defined here");
        return std::nullopt;
      }
      cell = matches[0];
    }
    // Bind sizes and function options.
    CellInstance proto;
    proto.cell = cell;
    std::vector<CellOption> opts = optionsOf(*cell);
    for (size_t i = 0; i < opts.size(); ++i) {
      const Expr *v = args.get(i + 1, opts[i].name);
      if (opts[i].isFunction) {
        std::string f = opts[i].defaultFunction;
        if (v) {
          if (v->kind != Expr::Name && v->kind != Expr::String) {
            error(v->loc, "option '" + opts[i].name +
                              "' takes a function name, like tanh or relu");
            return std::nullopt;
          }
          f = v->name;
        }
        if (!isKnownFunction(f)) {
          error(v ? v->loc : opts[i].loc,
                "unknown function '" + f + "' for option '" + opts[i].name +
                    "' (known: sigmoid, tanh, relu, exp)");
          return std::nullopt;
        }
        proto.functions[opts[i].symbol] = f;
        continue;
      }
      auto n = intArg(v, "option '" + opts[i].name + "'", 1);
      if (!n)
        return std::nullopt;
      proto.sizes[opts[i].symbol] = *n;
    }
    if (!checkAllUsed(args, "layer '" + e.name + "'"))
      return std::nullopt;

    const int64_t numDirs = bidirectional ? 2 : 1;
    mlir::Location l = loc(e.loc);
    // Sequence-major inside: [T, B, F].
    MVal seq = *x;
    if (batchFirst) {
      std::swap(seq.shape[0], seq.shape[1]);
      seq.value = TransposeOp::create(builder, l, tensorType(seq.shape, f32()),
                                      x->value,
                                      builder.getDenseI64ArrayAttr({1, 0, 2}));
    }
    const Dim batchDim = seq.shape[1];

    // Lengths.
    mlir::Value lengths;
    if (lengthsExpr) {
      auto lv = tensorArg(lengthsExpr, "lengths", true, 1);
      if (!lv)
        return std::nullopt;
      if (lv->shape.size() != 1 || lv->shape[0] != batchDim) {
        error(lengthsExpr->loc,
              "lengths must have shape [" + shapeString({batchDim}).substr(1) +
                  " (one per batch entry), found " + shapeString(lv->shape));
        return std::nullopt;
      }
      lengths = lv->value;
    }

    // Size of each state per layer: evaluate with I bound to anything, since
    // state sizes must not depend on the input size.
    std::string inputSym = cell->input.shape.dims[0].symbol;
    {
      llvm::StringMap<int64_t> sizes = proto.sizes;
      for (const CellArg &s : cell->states) {
        auto v = evalDim(s.shape.dims[0], sizes);
        if (!v)
          return noteUse(e, cell);
        if (*v < 1) {
          error(s.shape.loc, "state size must be at least 1");
          return noteUse(e, cell);
        }
        proto.stateSizes.push_back(*v);
      }
    }
    const size_t numStates = cell->states.size();
    // PyTorch initializes every RNN parameter from U(-1/sqrt(hidden),
    // 1/sqrt(hidden)); a cell without a `hidden` option uses its first state.
    int64_t initSize = proto.stateSizes[0];
    for (const CellOption &o : opts)
      if (o.name == "hidden" && !o.isFunction)
        initSize = proto.sizes.lookup(o.symbol);

    // Initial states: given ([L·D, B, S] each) or zeros.
    std::vector<MVal> initStates;
    if (stateExpr) {
      auto sv = genModelExpr(*stateExpr);
      if (!sv)
        return std::nullopt;
      if (numStates == 1 && sv->kind == MVal::Tensor)
        initStates.push_back(*sv);
      else if (sv->kind == MVal::Tuple && sv->elements.size() == numStates)
        initStates = sv->elements;
      else {
        error(stateExpr->loc, "cell '" + cell->name + "' has " +
                                  Twine(numStates) + " states; give state = " +
                                  (numStates == 1 ? "h0" : "(h0, c0, ...)"));
        return std::nullopt;
      }
      for (size_t k = 0; k < numStates; ++k) {
        std::vector<Dim> want{Dim{numLayers * numDirs, ""}, batchDim,
                              Dim{proto.stateSizes[k], ""}};
        const MVal &s = initStates[k];
        if (s.kind != MVal::Tensor || s.isInt || s.shape != want) {
          error(stateExpr->loc, "initial state '" + cell->states[k].name +
                                    "' must be f32" + shapeString(want) +
                                    " ([layers*directions, B, size]), "
                                    "found " +
                                    describe(s));
          return std::nullopt;
        }
      }
    }
    mlir::Value batchSize;
    if (!stateExpr) {
      auto c1 = mlir::arith::ConstantIndexOp::create(builder, l, 1);
      batchSize = mlir::tensor::DimOp::create(builder, l, seq.value, c1);
    }

    mlir::Value layerInput = seq.value;
    int64_t inSize = seq.shape[2].size;
    std::vector<std::vector<mlir::Value>> finals(numStates);
    for (int64_t layer = 0; layer < numLayers; ++layer) {
      if (layer > 0 && dropout > 0)
        layerInput = makeDropout(l, layerInput, dropout);
      llvm::SmallVector<mlir::Value> dirOutputs;
      int64_t outSize = 0;
      for (int64_t dir = 0; dir < numDirs; ++dir) {
        CellInstance inst = proto;
        inst.sizes[inputSym] = inSize;
        std::string suffix =
            "_l" + std::to_string(layer) + (dir ? "_reverse" : "");
        // Parameters live outside the scan: they are constant over time.
        llvm::StringMap<mlir::Value> paramValues;
        for (const ParamDecl &p : cell->params) {
          llvm::SmallVector<int64_t> shape;
          for (const DimExpr &d : p.shape.dims) {
            auto v = evalDim(d, inst.sizes);
            if (!v)
              return noteUse(e, cell);
            if (*v < 1) {
              error(d.loc, "parameter size must be at least 1");
              return noteUse(e, cell);
            }
            shape.push_back(*v);
          }
          auto pv = param(p.loc, e.label + "." + p.name + suffix, shape,
                          uniformInit(initSize));
          if (!pv)
            return std::nullopt;
          paramValues[p.name] = *pv;
        }
        llvm::SmallVector<mlir::Value> inits;
        for (size_t k = 0; k < numStates; ++k) {
          if (stateExpr)
            inits.push_back(
                IndexOp::create(builder, l, batchedVec(proto.stateSizes[k]),
                                initStates[k].value, layer * numDirs + dir));
          else
            inits.push_back(ZerosOp::create(builder, l,
                                            batchedVec(proto.stateSizes[k]),
                                            mlir::ValueRange{batchSize}));
        }
        int64_t firstSize = proto.stateSizes[0];
        llvm::SmallVector<mlir::Type> resultTypes;
        resultTypes.push_back(mlir::RankedTensorType::get(
            {mlir::ShapedType::kDynamic, mlir::ShapedType::kDynamic, firstSize},
            f32()));
        for (mlir::Value v : inits)
          resultTypes.push_back(v.getType());
        auto scan = ScanOp::create(builder, l, resultTypes,
                                   mlir::ValueRange{layerInput}, inits, lengths,
                                   dir == 1);
        mlir::Block *body = new mlir::Block();
        scan.getBody().push_back(body);
        body->addArgument(batchedVec(inSize), l);
        for (mlir::Value v : inits)
          body->addArgument(v.getType(), l);
        mlir::OpBuilder::InsertionGuard guard(builder);
        builder.setInsertionPointToStart(body);
        auto next = genCellBody(inst, *body, paramValues);
        if (!next)
          return noteUse(e, cell);
        llvm::SmallVector<mlir::Value> yields{(*next)[0]};
        yields.append(next->begin(), next->end());
        YieldOp::create(builder, l, yields);
        builder.setInsertionPointAfter(scan);
        dirOutputs.push_back(scan.getResult(0));
        for (size_t k = 0; k < numStates; ++k)
          finals[k].push_back(scan.getResult(1 + k));
        outSize += firstSize;
      }
      if (numDirs == 2)
        layerInput = ConcatOp::create(
            builder, l,
            mlir::RankedTensorType::get({mlir::ShapedType::kDynamic,
                                         mlir::ShapedType::kDynamic, outSize},
                                        f32()),
            dirOutputs);
      else
        layerInput = dirOutputs[0];
      inSize = outSize;
    }

    MVal out;
    out.shape = {seq.shape[0], batchDim, Dim{inSize, ""}};
    out.value = layerInput;
    if (batchFirst) {
      std::swap(out.shape[0], out.shape[1]);
      out.value = TransposeOp::create(builder, l, tensorType(out.shape, f32()),
                                      layerInput,
                                      builder.getDenseI64ArrayAttr({1, 0, 2}));
    }
    MVal states;
    states.kind = MVal::Tuple;
    for (size_t k = 0; k < numStates; ++k) {
      MVal s;
      s.shape = {Dim{numLayers * numDirs, ""}, batchDim,
                 Dim{proto.stateSizes[k], ""}};
      s.value =
          StackOp::create(builder, l, tensorType(s.shape, f32()), finals[k]);
      states.elements.push_back(s);
      // An initial state that is a model input is carried from one training
      // step to the next (truncated BPTT).
      if (k < initStates.size())
        if (auto arg = mlir::dyn_cast<mlir::BlockArgument>(initStates[k].value))
          if (arg.getOwner() == entryBlock &&
              llvm::none_of(carries, [&](const auto &c) {
                return c.first == arg.getArgNumber();
              }))
            carries.push_back({arg.getArgNumber(), s.value});
    }
    MVal result;
    result.kind = MVal::Tuple;
    result.elements.push_back(out);
    result.elements.push_back(numStates == 1 ? states.elements[0] : states);
    return result;
  }

  /// After an error inside a cell: points at the layer that instantiated it.
  std::nullopt_t noteUse(const Expr &use, const Cell *cell) {
    note(use.loc, "in this use of cell '" + cell->name + "'");
    return std::nullopt;
  }

  static std::string uniformInit(int64_t fanIn) {
    return "uniform:" + std::to_string(1.0 / std::sqrt(double(fanIn)));
  }

  static bool containsSymbol(const DimExpr &d, StringRef sym) {
    if (d.kind == DimExpr::Symbol)
      return d.symbol == sym;
    return llvm::any_of(
        d.operands, [&](const DimExpr &o) { return containsSymbol(o, sym); });
  }
};

} // namespace

mlir::OwningOpRef<mlir::ModuleOp>
loom::mlirGen(mlir::MLIRContext &context, llvm::SourceMgr &sourceMgr,
              const ast::Module &module,
              const std::vector<const Cell *> &cells) {
  context.loadDialect<LoomDialect, mlir::func::FuncDialect,
                      mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
  Generator gen(context, sourceMgr, cells);
  return gen.run(module);
}
