//===- Parser.cpp - recursive-descent parser of the loom DSL ----------===//
//
// Grammar (see docs/language.md):
//   file   := (cell | model)*
//   cell   := 'cell' NAME options? '(' arg (',' arg)* ')' ('->' '(' names ')')?
//             '{' (param-decl | assign)* '}'
//   model  := 'model' NAME '(' (NAME '=' INT),* ')' '{' model-stmt* '}'
//   expr   := sum; sum := prod (('+'|'-') prod)*; prod := unary (('*'|'/'|'@')
//   unary)*
//
//===----------------------------------------------------------------------===//

#include "frontend/Parser.h"
#include "frontend/Lexer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/Unicode.h"
#include "llvm/Support/WithColor.h"

#include <cstdlib>
#include <map>

using namespace loom;
using namespace loom::ast;
using llvm::SMLoc;
using llvm::StringRef;

namespace {

class Parser {
public:
  Parser(llvm::SourceMgr &sm, unsigned bufferId)
      : sm(sm), lexer(sm.getMemoryBuffer(bufferId)->getBuffer()) {
    advance();
  }

  bool parseFile(Module &module) {
    for (;;) {
      skipNewlines();
      if (failed)
        return false;
      if (tok.kind == Token::Eof)
        return true;
      if (tok.is("cell")) {
        Cell cell;
        if (!parseCell(cell))
          return false;
        module.cells.push_back(std::move(cell));
      } else if (tok.is("model")) {
        Model model;
        if (!parseModel(model))
          return false;
        module.models.push_back(std::move(model));
      } else {
        return error(tok.loc(), "expected 'model' or 'cell' at top level");
      }
    }
  }

private:
  llvm::SourceMgr &sm;
  Lexer lexer;
  Token tok;
  Token peekTok;
  bool hasPeek = false;
  int depth = 0;
  bool failed = false;

  void advance() {
    if (hasPeek) {
      tok = peekTok;
      hasPeek = false;
    } else {
      tok = lexer.next();
    }
    // A bad character or an unterminated string is an error wherever it is.
    if (tok.kind == Token::Error)
      error(tok.loc(), lexer.errorMessage());
  }
  const Token &peek() {
    if (!hasPeek) {
      peekTok = lexer.next();
      hasPeek = true;
    }
    return peekTok;
  }

  bool error(SMLoc loc, const llvm::Twine &msg) {
    if (!failed)
      printDiagnostic(sm, loc, llvm::SourceMgr::DK_Error, msg);
    failed = true;
    return false;
  }
  /// Enters one more level of nesting. Left-deep chains (`a + b + c`,
  /// `x[0][1]`) count one level per operator, since every later walk over
  /// the tree (checks, code generation, destruction) recurses that deep.
  bool enter() {
    if (++depth <= kMaxExprDepth)
      return true;
    return error(tok.loc(), "expression nested too deeply (limit " +
                                llvm::Twine(kMaxExprDepth) + ")");
  }
  /// Describes the current token for "expected X, found Y" messages.
  std::string found() {
    switch (tok.kind) {
    case Token::Eof:
      return "end of file";
    case Token::Newline:
      return "end of line";
    case Token::Error:
      return lexer.errorMessage().str();
    default:
      return ("'" + tok.text + "'").str();
    }
  }
  bool expect(StringRef punct, StringRef what = "") {
    if (tok.kind == Token::Punct && tok.text == punct) {
      advance();
      return true;
    }
    return error(tok.loc(), "expected '" + punct + "'" +
                                (what.empty() ? "" : " " + what) + ", found " +
                                found());
  }
  bool expectIdent(std::string &out, SMLoc &loc, StringRef what) {
    if (tok.kind != Token::Ident)
      return error(tok.loc(), "expected " + what + ", found " + found());
    out = tok.text.str();
    loc = tok.loc();
    advance();
    return true;
  }
  bool isPunct(StringRef p) const {
    return tok.kind == Token::Punct && tok.text == p;
  }
  void skipNewlines() {
    while (tok.kind == Token::Newline || isPunct(";"))
      advance();
  }
  void skipLineBreaks() {
    while (tok.kind == Token::Newline)
      advance();
  }
  /// True at the end of a statement: `input` and `output` without names.
  bool atStatementEnd(const Token &t) const {
    return t.kind == Token::Newline || t.kind == Token::Eof ||
           (t.kind == Token::Punct && (t.text == ";" || t.text == "}"));
  }
  bool endStatement() {
    if (tok.kind == Token::Newline || isPunct(";")) {
      advance();
      return true;
    }
    if (isPunct("}"))
      return true;
    return error(tok.loc(), "expected end of statement, found " + found());
  }
  bool parseInteger(int64_t &value) {
    if (tok.kind != Token::Integer)
      return error(tok.loc(), "expected an integer, found " + found());
    if (tok.text.getAsInteger(10, value))
      return error(tok.loc(), "integer '" + tok.text + "' is too large");
    advance();
    return true;
  }

  // Dimensions: 7, H, 4H, 4 * H, 2 * H + 1.
  bool parseDimAtom(DimExpr &d) {
    d.loc = tok.loc();
    if (tok.kind == Token::Integer) {
      d.kind = DimExpr::Const;
      const char *numEnd = tok.text.end();
      if (!parseInteger(d.value))
        return false;
      // `4H` is 4 * H.
      if (tok.kind == Token::Ident && tok.text.begin() == numEnd) {
        DimExpr sym;
        sym.loc = tok.loc();
        sym.kind = DimExpr::Symbol;
        sym.symbol = tok.text.str();
        advance();
        DimExpr num = std::move(d);
        d = DimExpr();
        d.loc = num.loc;
        d.kind = DimExpr::Mul;
        d.operands.push_back(std::move(num));
        d.operands.push_back(std::move(sym));
      }
      return true;
    }
    if (tok.kind == Token::Ident) {
      d.kind = DimExpr::Symbol;
      d.symbol = tok.text.str();
      advance();
      return true;
    }
    if (isPunct("(")) {
      advance();
      if (!parseDim(d))
        return false;
      return expect(")");
    }
    return error(tok.loc(), "expected a dimension (an integer or a size name), "
                            "found " +
                                found());
  }
  static void combine(DimExpr &d, DimExpr::Kind kind, DimExpr rhs) {
    DimExpr lhs = std::move(d);
    d = DimExpr();
    d.loc = lhs.loc;
    d.kind = kind;
    d.operands.push_back(std::move(lhs));
    d.operands.push_back(std::move(rhs));
  }
  bool parseDimProduct(DimExpr &d) {
    if (!parseDimAtom(d))
      return false;
    while (isPunct("*")) {
      if (!enter())
        return false;
      advance();
      DimExpr rhs;
      if (!parseDimAtom(rhs))
        return false;
      combine(d, DimExpr::Mul, std::move(rhs));
    }
    return true;
  }
  bool parseDim(DimExpr &d) {
    int saved = depth;
    if (!enter() || !parseDimProduct(d))
      return false;
    while (isPunct("+")) {
      if (!enter())
        return false;
      advance();
      DimExpr rhs;
      if (!parseDimProduct(rhs))
        return false;
      combine(d, DimExpr::Add, std::move(rhs));
    }
    depth = saved;
    return true;
  }
  bool parseShape(Shape &shape) {
    shape.loc = tok.loc();
    if (!expect("[", "to start a shape"))
      return false;
    if (isPunct("]"))
      return error(tok.loc(), "a shape needs at least one dimension");
    for (;;) {
      DimExpr d;
      if (!parseDim(d))
        return false;
      shape.dims.push_back(std::move(d));
      if (isPunct(",")) {
        advance();
        continue;
      }
      return expect("]", "to end the shape");
    }
  }

  // Patterns: a, (b, c), _
  bool parsePatternElement(Pattern &p) {
    p.loc = tok.loc();
    if (tok.kind == Token::Ident) {
      p.name = tok.text.str();
      advance();
      return true;
    }
    if (isPunct("(")) {
      int saved = depth;
      if (!enter())
        return false;
      advance();
      if (!parsePatternList(p) || !expect(")"))
        return false;
      depth = saved;
      return true;
    }
    return error(tok.loc(), "expected a name to assign to, found " + found());
  }
  bool parsePatternList(Pattern &p) {
    Pattern first;
    if (!parsePatternElement(first))
      return false;
    if (!isPunct(",")) {
      p = std::move(first);
      return true;
    }
    p.name.clear();
    p.loc = first.loc;
    p.elements.push_back(std::move(first));
    while (isPunct(",")) {
      advance();
      Pattern next;
      if (!parsePatternElement(next))
        return false;
      p.elements.push_back(std::move(next));
    }
    return true;
  }

  // Expressions.
  ExprPtr parseExpr() {
    int saved = depth;
    if (!enter())
      return nullptr;
    ExprPtr lhs = parseProduct();
    while (lhs && (isPunct("+") || isPunct("-"))) {
      if (!enter())
        return nullptr;
      auto bin = std::make_unique<Expr>(Expr::Binary, tok.loc());
      bin->op = tok.text[0];
      advance();
      ExprPtr rhs = parseProduct();
      if (!rhs)
        return nullptr;
      bin->operands.push_back(std::move(lhs));
      bin->operands.push_back(std::move(rhs));
      lhs = std::move(bin);
    }
    depth = saved;
    return lhs;
  }
  ExprPtr parseProduct() {
    int saved = depth;
    ExprPtr lhs = parseUnary();
    while (lhs && (isPunct("*") || isPunct("/") || isPunct("@"))) {
      if (!enter())
        return nullptr;
      auto bin = std::make_unique<Expr>(Expr::Binary, tok.loc());
      bin->op = tok.text[0];
      advance();
      ExprPtr rhs = parseUnary();
      if (!rhs)
        return nullptr;
      bin->operands.push_back(std::move(lhs));
      bin->operands.push_back(std::move(rhs));
      lhs = std::move(bin);
    }
    depth = saved;
    return lhs;
  }
  ExprPtr parseUnary() {
    if (isPunct("-")) {
      if (!enter())
        return nullptr;
      auto un = std::make_unique<Expr>(Expr::Unary, tok.loc());
      un->op = '-';
      advance();
      ExprPtr operand = parseUnary();
      if (!operand)
        return nullptr;
      un->operands.push_back(std::move(operand));
      --depth;
      return un;
    }
    return parsePostfix();
  }
  ExprPtr parsePostfix() {
    int saved = depth;
    ExprPtr e = parsePrimary();
    while (e && isPunct("[")) {
      if (!enter())
        return nullptr;
      auto idx = std::make_unique<Expr>(Expr::Index, tok.loc());
      advance();
      if (!parseInteger(idx->index) || !expect("]"))
        return nullptr;
      idx->operands.push_back(std::move(e));
      e = std::move(idx);
    }
    depth = saved;
    return e;
  }
  ExprPtr parseCallArgs(ExprPtr call) {
    advance(); // (
    if (isPunct(")")) {
      advance();
      return call;
    }
    for (;;) {
      if (tok.kind == Token::Ident && peek().kind == Token::Punct &&
          peek().text == "=") {
        KeywordArg kw;
        kw.name = tok.text.str();
        kw.loc = tok.loc();
        advance();
        advance();
        kw.value = parseExpr();
        if (!kw.value)
          return nullptr;
        for (const KeywordArg &other : call->keywords)
          if (other.name == kw.name) {
            error(kw.loc, "option '" + kw.name + "' given twice");
            return nullptr;
          }
        call->keywords.push_back(std::move(kw));
      } else {
        if (!call->keywords.empty()) {
          error(tok.loc(), "positional argument after keyword arguments");
          return nullptr;
        }
        ExprPtr arg = parseExpr();
        if (!arg)
          return nullptr;
        call->operands.push_back(std::move(arg));
      }
      if (isPunct(",")) {
        advance();
        continue;
      }
      if (!expect(")", "to close the argument list"))
        return nullptr;
      return call;
    }
  }
  ExprPtr parsePrimary() {
    SMLoc loc = tok.loc();
    switch (tok.kind) {
    case Token::Integer:
    case Token::Float: {
      auto e = std::make_unique<Expr>(Expr::Number, loc);
      e->isInteger = tok.kind == Token::Integer;
      std::string text = tok.text.str();
      char *endp = nullptr;
      e->number = std::strtod(text.c_str(), &endp);
      advance();
      return e;
    }
    case Token::String: {
      auto e = std::make_unique<Expr>(Expr::String, loc);
      e->name = tok.text.drop_front().drop_back().str();
      advance();
      return e;
    }
    case Token::Ident: {
      std::string name = tok.text.str();
      if (peek().kind == Token::Punct && peek().text == ":") {
        error(loc, "a layer name ('" + name +
                       ":') may only start the right side of an assignment, "
                       "like `y = " +
                       name + ": linear(x, 4)`");
        return nullptr;
      }
      advance();
      if (isPunct("(")) {
        auto call = std::make_unique<Expr>(Expr::Call, loc);
        call->name = name;
        return parseCallArgs(std::move(call));
      }
      if (isPunct(".")) {
        advance();
        auto ref = std::make_unique<Expr>(Expr::ParamRef, loc);
        ref->name = name;
        SMLoc memberLoc;
        if (!expectIdent(ref->member, memberLoc, "a parameter name after '.'"))
          return nullptr;
        return ref;
      }
      auto e = std::make_unique<Expr>(Expr::Name, loc);
      e->name = name;
      return e;
    }
    case Token::Punct:
      if (tok.text == "(") {
        advance();
        ExprPtr first = parseExpr();
        if (!first)
          return nullptr;
        if (isPunct(",")) {
          auto tuple = std::make_unique<Expr>(Expr::Tuple, loc);
          tuple->operands.push_back(std::move(first));
          while (isPunct(",")) {
            advance();
            ExprPtr next = parseExpr();
            if (!next)
              return nullptr;
            tuple->operands.push_back(std::move(next));
          }
          first = std::move(tuple);
        }
        if (!expect(")"))
          return nullptr;
        return first;
      }
      break;
    default:
      break;
    }
    error(loc, "expected an expression, found " + found());
    return nullptr;
  }

  bool parseAssign(Assign &a, bool allowLabel) {
    a.loc = tok.loc();
    if (!parsePatternList(a.target))
      return false;
    if (!expect("=", "after the assigned names"))
      return false;
    std::string label;
    SMLoc labelLoc;
    if (!allowLabel && tok.kind == Token::Ident &&
        peek().kind == Token::Punct && peek().text == ":")
      return error(tok.loc(), "a cell has no layers: layer names ('" +
                                  tok.text + ":') are for model statements");
    if (allowLabel && tok.kind == Token::Ident && peek().kind == Token::Punct &&
        peek().text == ":") {
      label = tok.text.str();
      labelLoc = tok.loc();
      advance();
      advance();
    }
    a.value = parseExpr();
    if (!a.value)
      return false;
    if (!label.empty()) {
      if (a.value->kind != Expr::Call)
        return error(labelLoc, "a layer name ('" + label +
                                   ":') must be followed by a layer call");
      a.value->label = label;
      a.value->labelLoc = labelLoc;
    }
    return endStatement();
  }

  bool parseCell(Cell &cell) {
    cell.loc = tok.loc();
    advance(); // cell
    if (!expectIdent(cell.name, cell.loc, "a cell name"))
      return false;
    if (isPunct("[")) {
      cell.hasOptionList = true;
      advance();
      for (;;) {
        CellOption opt;
        if (!expectIdent(opt.name, opt.loc, "an option name") ||
            !expect(":", "between the option name and its symbol"))
          return false;
        SMLoc symLoc;
        if (!expectIdent(opt.symbol, symLoc, "a symbol for the option"))
          return false;
        if (isPunct("=")) {
          advance();
          opt.isFunction = true;
          SMLoc defLoc;
          if (!expectIdent(opt.defaultFunction, defLoc,
                           "a function name as the default"))
            return false;
        }
        cell.options.push_back(std::move(opt));
        if (isPunct(",")) {
          advance();
          continue;
        }
        if (!expect("]", "to end the option list"))
          return false;
        break;
      }
    }
    if (!expect("(", "to start the cell's arguments"))
      return false;
    std::vector<CellArg> args;
    for (;;) {
      CellArg arg;
      if (!expectIdent(arg.name, arg.loc, "an argument name"))
        return false;
      if (!parseShape(arg.shape))
        return false;
      if (arg.shape.dims.size() != 1)
        return error(arg.shape.loc, "a cell argument is a vector: give one "
                                    "feature size, like x[I]");
      args.push_back(std::move(arg));
      if (isPunct(",")) {
        advance();
        continue;
      }
      if (!expect(")", "to end the cell's arguments"))
        return false;
      break;
    }
    if (args.size() < 2)
      return error(cell.loc, "cell '" + cell.name +
                                 "' needs an input and at least one state, "
                                 "like (x[I], h[H])");
    cell.input = std::move(args.front());
    cell.states.assign(std::make_move_iterator(args.begin() + 1),
                       std::make_move_iterator(args.end()));
    if (isPunct("->")) {
      advance();
      bool paren = isPunct("(");
      if (paren)
        advance();
      for (;;) {
        std::string name;
        SMLoc loc;
        if (!expectIdent(name, loc, "a state name"))
          return false;
        cell.results.push_back({name, loc});
        if (isPunct(",")) {
          advance();
          continue;
        }
        break;
      }
      if (paren && !expect(")"))
        return false;
    }
    skipLineBreaks(); // the body's brace may start the next line
    if (!expect("{", "to start the cell body"))
      return false;
    for (;;) {
      skipNewlines();
      if (isPunct("}")) {
        advance();
        return true;
      }
      if (tok.kind == Token::Eof) {
        error(tok.loc(), "expected '}' to end cell '" + cell.name +
                             "', found end of file");
        printDiagnostic(sm, cell.loc, llvm::SourceMgr::DK_Note,
                        "cell '" + cell.name + "' starts here");
        return false;
      }
      if (tok.is("param")) {
        advance();
        for (;;) {
          ParamDecl p;
          if (!expectIdent(p.name, p.loc, "a parameter name") ||
              !parseShape(p.shape))
            return false;
          cell.params.push_back(std::move(p));
          if (isPunct(",")) {
            advance();
            continue;
          }
          break;
        }
        if (!endStatement())
          return false;
        continue;
      }
      Assign a;
      if (!parseAssign(a, /*allowLabel=*/false))
        return false;
      cell.body.push_back(std::move(a));
    }
  }

  /// `train key = value, ...` (after `train`): the keys and value kinds
  /// are checked here so that mistakes point at the model file.
  bool parseTrainSettings(Model &model) {
    static const std::map<std::string, std::string> kinds = {
        {"optimizer", "sgd|adam|adamw"},
        {"lr_schedule", "constant|step|plateau"},
        {"tokenizer", "char|word"},
        {"nesterov", "true|false"},
        {"lr", "number"},
        {"momentum", "number"},
        {"dampening", "number"},
        {"weight_decay", "number"},
        {"beta1", "number"},
        {"beta2", "number"},
        {"eps", "number"},
        {"clip", "number"},
        {"l1", "number"},
        {"lr_gamma", "number"},
        {"lr_decay", "number"},
        {"valid_fraction", "number"},
        {"bptt", "integer"},
        {"batch_size", "integer"},
        {"eval_batch_size", "integer"},
        {"lr_step", "integer"},
        {"epochs", "integer"},
        {"steps", "integer"},
        {"eval_every", "integer"},
    };
    for (;;) {
      TrainSetting st;
      if (!expectIdent(st.key, st.loc, "a training setting name"))
        return false;
      auto kind = kinds.find(st.key);
      if (kind == kinds.end()) {
        std::string known;
        for (const auto &[k, v] : kinds)
          known += (known.empty() ? "" : ", ") + k;
        return error(st.loc, "unknown training setting '" + st.key +
                                 "' (known: " + known + ")");
      }
      for (const TrainSetting &other : model.train)
        if (other.key == st.key)
          return error(st.loc,
                       "training setting '" + st.key + "' is given twice");
      if (!expect("=", "after the setting name"))
        return false;
      st.valueLoc = tok.loc();
      bool negative = false;
      if (isPunct("-")) {
        negative = true;
        advance();
      }
      const std::string &want = kind->second;
      bool numeric = want == "number" || want == "integer";
      if (numeric && (tok.kind == Token::Integer || tok.kind == Token::Float)) {
        st.kind = TrainSetting::Number;
        st.isInteger = tok.kind == Token::Integer;
        st.number = std::strtod(tok.text.str().c_str(), nullptr);
        if (negative)
          st.number = -st.number;
        if (want == "integer" && (!st.isInteger || st.number < 1))
          return error(st.valueLoc, "training setting '" + st.key +
                                        "' must be a positive integer");
        if (st.number < 0)
          return error(st.valueLoc, "training setting '" + st.key +
                                        "' must not be negative");
        advance();
      } else if (!numeric && !negative && tok.kind == Token::Ident &&
                 llvm::is_contained(llvm::split(want, '|'), tok.text)) {
        st.kind = TrainSetting::Name;
        st.name = tok.text.str();
        advance();
      } else {
        return error(st.valueLoc, "training setting '" + st.key + "' expects " +
                                      (numeric ? "a" : "one of") + " " +
                                      (numeric ? want : "{" + want + "}") +
                                      ", found " + found());
      }
      model.train.push_back(std::move(st));
      if (!isPunct(","))
        return true;
      advance();
      // A trailing comma continues the statement on the next line.
      while (tok.kind == Token::Newline)
        advance();
    }
  }

  bool parseModel(Model &model) {
    advance(); // model
    if (!expectIdent(model.name, model.loc, "a model name"))
      return false;
    if (!expect("(", "to start the model's constants"))
      return false;
    while (!isPunct(")")) {
      ModelConst c;
      if (!expectIdent(c.name, c.loc, "a constant name") ||
          !expect("=", "after the constant name") || !parseInteger(c.value))
        return false;
      model.constants.push_back(c);
      if (isPunct(","))
        advance();
      else if (!isPunct(")"))
        return error(tok.loc(), "expected ',' or ')', found " + found());
    }
    advance();
    skipLineBreaks();
    if (!expect("{", "to start the model body"))
      return false;
    for (;;) {
      skipNewlines();
      if (isPunct("}")) {
        advance();
        return true;
      }
      if (tok.kind == Token::Eof) {
        error(tok.loc(), "expected '}' to end model '" + model.name +
                             "', found end of file");
        printDiagnostic(sm, model.loc, llvm::SourceMgr::DK_Note,
                        "model '" + model.name + "' starts here");
        return false;
      }
      if ((tok.is("input") || tok.is("output")) && atStatementEnd(peek())) {
        std::string kw = tok.text.str();
        advance();
        return error(tok.loc(),
                     "expected " +
                         StringRef(kw == "input" ? "an input" : "an output") +
                         " name after '" + kw + "', found " + found());
      }
      if (tok.is("input") && peek().kind == Token::Ident) {
        advance();
        ModelInput in;
        if (!expectIdent(in.name, in.loc, "an input name") ||
            !expect(":", "after the input name"))
          return false;
        if (!expectIdent(in.dtype, in.dtypeLoc, "an element type (f32, i64)") ||
            !parseShape(in.shape) || !endStatement())
          return false;
        model.inputs.push_back(std::move(in));
        continue;
      }
      if (tok.is("output") && peek().kind == Token::Ident) {
        advance();
        for (;;) {
          std::string name;
          SMLoc loc;
          if (!expectIdent(name, loc, "an output name"))
            return false;
          model.outputs.push_back({name, loc});
          if (isPunct(",")) {
            advance();
            continue;
          }
          break;
        }
        if (!endStatement())
          return false;
        continue;
      }
      if (tok.is("loss") && peek().kind == Token::Ident) {
        SMLoc at = tok.loc();
        advance();
        if (model.loss)
          return error(at, "model '" + model.name + "' has two losses");
        model.lossLoc = at;
        model.loss = parseExpr();
        if (!model.loss || !endStatement())
          return false;
        continue;
      }
      if (tok.is("train") && peek().kind == Token::Ident) {
        advance();
        if (!parseTrainSettings(model) || !endStatement())
          return false;
        continue;
      }
      Assign a;
      if (!parseAssign(a, /*allowLabel=*/true))
        return false;
      model.body.push_back(std::move(a));
    }
  }
};

} // namespace

/// `diag` with its source line cut to a window of kShownLineWidth bytes
/// around the column ("..." where cut), at UTF-8 character boundaries.
static llvm::SMDiagnostic windowed(const llvm::SMDiagnostic &diag) {
  StringRef line = diag.getLineContents();
  int col = diag.getColumnNo();
  const llvm::SourceMgr *sm = diag.getSourceMgr();
  if (line.size() <= kShownLineWidth || col < 0 || !sm)
    return diag;
  auto isContinuation = [&](size_t i) {
    return i < line.size() && (uint8_t(line[i]) & 0xc0) == 0x80;
  };
  size_t begin = size_t(col) > kShownLineWidth / 2
                     ? std::min(size_t(col) - kShownLineWidth / 2,
                                line.size() - kShownLineWidth)
                     : 0;
  while (begin > 0 && isContinuation(begin))
    --begin;
  size_t end = std::min(line.size(), begin + kShownLineWidth);
  while (end < line.size() && isContinuation(end))
    ++end;
  std::string shown = (begin > 0 ? "..." : "") +
                      line.substr(begin, end - begin).str() +
                      (end < line.size() ? "..." : "");
  int shownCol = col - int(begin) + (begin > 0 ? 3 : 0);
  return llvm::SMDiagnostic(*sm, diag.getLoc(), diag.getFilename(),
                            diag.getLineNo(), shownCol, diag.getKind(),
                            diag.getMessage(), shown, {});
}

bool loom::checkSourceLimits(llvm::SourceMgr &sm, unsigned bufferId) {
  const llvm::MemoryBuffer *buf = sm.getMemoryBuffer(bufferId);
  StringRef text = buf->getBuffer();
  SMLoc start = SMLoc::getFromPointer(text.data());
  if (text.size() > kMaxSourceBytes) {
    printDiagnostic(sm, start, llvm::SourceMgr::DK_Error,
                    "the model source is " + llvm::Twine(text.size()) +
                        " bytes; the limit is " + llvm::Twine(kMaxSourceBytes) +
                        " (16 MiB)");
    return false;
  }
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == StringRef::npos ? text.size() : nl;
    if (end - pos > kMaxLineLength) {
      printDiagnostic(
          sm, SMLoc::getFromPointer(text.data() + pos + kMaxLineLength),
          llvm::SourceMgr::DK_Error,
          "this line is " + llvm::Twine(end - pos) +
              " bytes long; the limit is " + llvm::Twine(kMaxLineLength) +
              " (break it: newlines inside parentheses are "
              "allowed)");
      return false;
    }
    pos = end + 1;
  }
  return true;
}

void loom::printDiagnostic(llvm::SourceMgr &sm, SMLoc loc,
                           llvm::SourceMgr::DiagKind kind,
                           const llvm::Twine &msg) {
  llvm::SMDiagnostic diag = sm.GetMessage(loc, kind, msg);
  // A host program (the embedding API) collects diagnostics itself.
  if (auto handler = sm.getDiagHandler()) {
    handler(diag, sm.getDiagContext());
    return;
  }
  writeDiagnostic(llvm::errs(), diag);
}

void loom::writeDiagnostic(llvm::raw_ostream &os,
                           const llvm::SMDiagnostic &original) {
  llvm::SMDiagnostic diag = windowed(original);
  if (diag.getColumnNo() == original.getColumnNo()) {
    diag.print(nullptr, os);
  } else {
    // A long line, cut: the location keeps the real column.
    std::string text;
    llvm::raw_string_ostream ts(text);
    diag.print(nullptr, ts, /*ShowColors=*/false);
    std::string shown = ":" + std::to_string(diag.getLineNo()) + ":" +
                        std::to_string(diag.getColumnNo() + 1) + ": ";
    size_t at = text.find(shown);
    if (at != std::string::npos)
      text.replace(at, shown.size(),
                   ":" + std::to_string(original.getLineNo()) + ":" +
                       std::to_string(original.getColumnNo() + 1) + ": ");
    os << text;
  }
  StringRef line = diag.getLineContents();
  if (diag.getColumnNo() < 0 || llvm::isASCII(line))
    return;
  // SourceMgr printed the line (tabs expanded to 8 columns) but no caret:
  // place it at the display width of the text before the column.
  StringRef before = line.take_front(diag.getColumnNo());
  unsigned width = 0;
  for (size_t i = 0; i < before.size();) {
    unsigned char c = before[i];
    if (c == '\t') {
      width = (width / 8 + 1) * 8;
      ++i;
      continue;
    }
    unsigned n = llvm::getNumBytesForUTF8(c);
    if (c < 0x80 || i + n > before.size() ||
        !llvm::isLegalUTF8Sequence(
            reinterpret_cast<const llvm::UTF8 *>(before.data() + i),
            reinterpret_cast<const llvm::UTF8 *>(before.data() + i + n))) {
      ++width; // ASCII, or a bad byte shown as one replacement character
      ++i;
      continue;
    }
    int w = llvm::sys::unicode::columnWidthUTF8(before.substr(i, n));
    width += w > 0 ? w : 0;
    i += n;
  }
  os.indent(width);
  llvm::WithColor(os, llvm::raw_ostream::GREEN, /*Bold=*/true) << '^';
  os << '\n';
}

bool loom::parseLoom(llvm::SourceMgr &sourceMgr, unsigned bufferId,
                     ast::Module &module) {
  Parser parser(sourceMgr, bufferId);
  return parser.parseFile(module);
}
