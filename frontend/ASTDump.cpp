//===- ASTDump.cpp - readable dump of the loom syntax tree ------------===//
//
// The output of `loom compile --emit=ast`: one node per line, indented by
// depth, with the line:col of each node.
//
//===----------------------------------------------------------------------===//

#include "frontend/AST.h"

#include "llvm/Support/Format.h"

#include "llvm/Support/SourceMgr.h"

using namespace loom::ast;

namespace {
struct Dumper {
  llvm::raw_ostream &os;
  int indent = 0;

  llvm::raw_ostream &line() { return os.indent(indent * 2); }

  void dim(const DimExpr &d) {
    switch (d.kind) {
    case DimExpr::Const:
      os << d.value;
      break;
    case DimExpr::Symbol:
      os << d.symbol;
      break;
    case DimExpr::Mul:
    case DimExpr::Add:
      os << "(";
      dim(d.operands[0]);
      os << (d.kind == DimExpr::Mul ? " * " : " + ");
      dim(d.operands[1]);
      os << ")";
      break;
    }
  }
  void shape(const Shape &s) {
    os << "[";
    for (size_t i = 0; i < s.dims.size(); ++i) {
      if (i)
        os << ", ";
      dim(s.dims[i]);
    }
    os << "]";
  }
  void pattern(const Pattern &p) {
    if (!p.isTuple()) {
      os << p.name;
      return;
    }
    os << "(";
    for (size_t i = 0; i < p.elements.size(); ++i) {
      if (i)
        os << ", ";
      pattern(p.elements[i]);
    }
    os << ")";
  }
  void expr(const Expr &e) {
    switch (e.kind) {
    case Expr::Number:
      line() << "Number " << e.number << "\n";
      return;
    case Expr::String:
      line() << "String \"" << e.name << "\"\n";
      return;
    case Expr::Name:
      line() << "Name " << e.name << "\n";
      return;
    case Expr::ParamRef:
      line() << "ParamRef " << e.name << "." << e.member << "\n";
      return;
    case Expr::Unary:
      line() << "Unary " << e.op << "\n";
      break;
    case Expr::Binary:
      line() << "Binary " << e.op << "\n";
      break;
    case Expr::Call:
      line() << "Call " << e.name;
      if (!e.label.empty())
        os << " (layer " << e.label << ")";
      os << "\n";
      break;
    case Expr::Index:
      line() << "Index [" << e.index << "]\n";
      break;
    case Expr::Tuple:
      line() << "Tuple\n";
      break;
    }
    ++indent;
    for (const ExprPtr &op : e.operands)
      expr(*op);
    for (const KeywordArg &kw : e.keywords) {
      line() << "Keyword " << kw.name << "\n";
      ++indent;
      expr(*kw.value);
      --indent;
    }
    --indent;
  }
  void assign(const Assign &a) {
    line() << "Assign ";
    pattern(a.target);
    os << "\n";
    ++indent;
    expr(*a.value);
    --indent;
  }
};
} // namespace

void loom::ast::dump(const Module &module, llvm::raw_ostream &os) {
  Dumper d{os};
  for (const Cell &cell : module.cells) {
    os << "Cell " << cell.name;
    if (!cell.options.empty()) {
      os << " [";
      for (size_t i = 0; i < cell.options.size(); ++i) {
        const CellOption &o = cell.options[i];
        os << (i ? ", " : "") << o.name << ": " << o.symbol;
        if (o.isFunction)
          os << " = " << o.defaultFunction;
      }
      os << "]";
    }
    os << "\n";
    d.indent = 1;
    d.line() << "Input " << cell.input.name;
    d.shape(cell.input.shape);
    os << "\n";
    for (const CellArg &s : cell.states) {
      d.line() << "State " << s.name;
      d.shape(s.shape);
      os << "\n";
    }
    for (const ParamDecl &p : cell.params) {
      d.line() << "Param " << p.name;
      d.shape(p.shape);
      os << "\n";
    }
    for (const Assign &a : cell.body)
      d.assign(a);
  }
  for (const Model &model : module.models) {
    os << "Model " << model.name << "\n";
    d.indent = 1;
    for (const ModelConst &c : model.constants)
      d.line() << "Const " << c.name << " = " << c.value << "\n";
    for (const ModelInput &in : model.inputs) {
      d.line() << "Input " << in.name << " : " << in.dtype;
      d.shape(in.shape);
      os << "\n";
    }
    for (const Assign &a : model.body)
      d.assign(a);
    d.line() << "Output";
    for (const auto &o : model.outputs)
      os << " " << o.first;
    os << "\n";
    if (model.loss) {
      d.line() << "Loss\n";
      ++d.indent;
      d.expr(*model.loss);
      --d.indent;
    }
    for (const TrainSetting &st : model.train) {
      d.line() << "Train " << st.key << " = ";
      if (st.kind == TrainSetting::Name)
        os << st.name << "\n";
      else
        os << llvm::format("%g", st.number) << "\n";
    }
  }
}
