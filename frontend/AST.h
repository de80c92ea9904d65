//===- AST.h - syntax tree of the loom DSL ----------------------*- C++ -*-===//
//
// The parsed form of a .loom file: cells (recurrent steps) and models. Nodes
// keep their source location for diagnostics; meaning is given by MLIRGen.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_AST_H
#define LOOM_FRONTEND_AST_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace loom {
namespace ast {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// A keyword argument of a call: `layers = 2`.
struct KeywordArg {
  std::string name;
  llvm::SMLoc loc;
  ExprPtr value;
};

struct Expr {
  enum Kind {
    Number,   // 1, 0.5
    String,   // "relu"
    Name,     // x
    ParamRef, // encoder.weight
    Unary,    // -x
    Binary,   // a + b, W @ x
    Call,     // f(args, kw = v), optionally labelled `name: f(...)`
    Index,    // h_n[0]
    Tuple,    // (h0, c0)
  };
  Kind kind;
  llvm::SMLoc loc;
  double number = 0;
  bool isInteger = false;
  std::string name;   // Name, ParamRef (layer), Call (callee), String
  std::string member; // ParamRef (parameter)
  char op = 0;        // Unary/Binary: + - * / @
  std::vector<ExprPtr> operands; // Unary/Binary/Index base/Tuple/Call args
  std::vector<KeywordArg> keywords;
  std::string label; // Call: the layer name given with `label:`
  llvm::SMLoc labelLoc;
  int64_t index = 0; // Index

  explicit Expr(Kind k, llvm::SMLoc l) : kind(k), loc(l) {}
};

/// The left side of an assignment: a name, `_`, or a nested tuple.
struct Pattern {
  llvm::SMLoc loc;
  std::string name; // empty for tuples; "_" discards
  std::vector<Pattern> elements;
  bool isTuple() const { return name.empty(); }
};

/// A dimension expression in a shape: `4H`, `4 * H`, `I`, `7`.
struct DimExpr {
  llvm::SMLoc loc;
  enum Kind { Const, Symbol, Mul, Add } kind = Const;
  int64_t value = 0;
  std::string symbol;
  std::vector<DimExpr> operands;
};

struct Shape {
  llvm::SMLoc loc;
  std::vector<DimExpr> dims;
};

/// `param W[4H, I]` in a cell.
struct ParamDecl {
  std::string name;
  llvm::SMLoc loc;
  Shape shape;
};

struct Assign {
  llvm::SMLoc loc;
  Pattern target;
  ExprPtr value;
};

/// An option of a cell, in `cell name[hidden: H, nonlinearity: act = tanh]`.
struct CellOption {
  std::string name;   // keyword users write: hidden
  std::string symbol; // name inside the cell: H or act
  llvm::SMLoc loc;
  bool isFunction = false; // default is a function name, not a size
  std::string defaultFunction;
};

struct CellArg {
  std::string name;
  llvm::SMLoc loc;
  Shape shape; // one dimension: the feature size
};

struct Cell {
  std::string name;
  llvm::SMLoc loc;
  bool hasOptionList = false;
  std::vector<CellOption> options;
  CellArg input;
  std::vector<CellArg> states;
  std::vector<std::pair<std::string, llvm::SMLoc>> results; // `-> (h, c)`
  std::vector<ParamDecl> params;
  std::vector<Assign> body;
};

struct ModelInput {
  std::string name;
  llvm::SMLoc loc;
  std::string dtype; // f32 or i64
  llvm::SMLoc dtypeLoc;
  Shape shape;
};

struct ModelConst {
  std::string name;
  llvm::SMLoc loc;
  int64_t value;
};

/// One `train key = value` setting: a number, a name or true/false.
struct TrainSetting {
  std::string key;
  llvm::SMLoc loc;
  enum Kind { Number, Name } kind = Number;
  double number = 0;
  bool isInteger = false;
  std::string name;
  llvm::SMLoc valueLoc;
};

struct Model {
  std::string name;
  llvm::SMLoc loc;
  std::vector<ModelConst> constants;
  std::vector<ModelInput> inputs;
  std::vector<Assign> body;
  std::vector<std::pair<std::string, llvm::SMLoc>> outputs;
  /// `loss EXPR`: what training minimizes (null if the model has none).
  ExprPtr loss;
  llvm::SMLoc lossLoc;
  /// `train key = value, ...`: defaults for `loom train` (flags override).
  std::vector<TrainSetting> train;
};

struct Module {
  std::vector<Cell> cells;
  std::vector<Model> models;
};

/// Prints the tree in an indented, readable form (`loom compile --emit=ast`).
void dump(const Module &module, llvm::raw_ostream &os);

} // namespace ast
} // namespace loom

#endif
