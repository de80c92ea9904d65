//===- Lexer.h - tokens of the loom DSL -------------------------*- C++ -*-===//
#ifndef LOOM_FRONTEND_LEXER_H
#define LOOM_FRONTEND_LEXER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

#include <string>

namespace loom {

struct Token {
  enum Kind {
    Eof,
    Newline,
    Ident,
    Integer,
    Float,
    String,
    Punct, // one of ( ) [ ] { } , : = + - * / @ . ; and "->"
    Error,
  };
  Kind kind = Eof;
  llvm::StringRef text;
  llvm::SMLoc loc() const { return llvm::SMLoc::getFromPointer(text.data()); }
  bool is(llvm::StringRef punct) const {
    return (kind == Punct || kind == Ident) && text == punct;
  }
};

/// Splits source text into tokens. Newlines separate statements, except
/// inside parentheses and brackets, where an expression may span lines.
class Lexer {
public:
  explicit Lexer(llvm::StringRef buffer)
      : cur(buffer.begin()), end(buffer.end()) {}
  Token next();
  /// For an Error token: what is wrong.
  llvm::StringRef errorMessage() const { return error; }

private:
  const char *cur;
  const char *end;
  int depth = 0;
  std::string error;
};

} // namespace loom

#endif
