//===- Lexer.cpp - tokens of the loom DSL -----------------------------===//
#include "frontend/Lexer.h"

#include <cctype>

using namespace loom;

static bool isIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
static bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

Token Lexer::next() {
  Token tok;
  for (;;) {
    while (cur < end && (*cur == ' ' || *cur == '\t' || *cur == '\r' ||
                         (*cur == '\n' && depth > 0)))
      ++cur;
    if (cur < end && *cur == '#') {
      while (cur < end && *cur != '\n')
        ++cur;
      continue;
    }
    break;
  }
  const char *start = cur;
  auto make = [&](Token::Kind kind) {
    tok.kind = kind;
    tok.text = llvm::StringRef(start, cur - start);
    return tok;
  };
  if (cur >= end)
    return make(Token::Eof);
  char c = *cur;
  if (c == '\n') {
    ++cur;
    return make(Token::Newline);
  }
  if (isIdentStart(c)) {
    while (cur < end && isIdentChar(*cur))
      ++cur;
    return make(Token::Ident);
  }
  if (std::isdigit(static_cast<unsigned char>(c)) ||
      (c == '.' && cur + 1 < end &&
       std::isdigit(static_cast<unsigned char>(cur[1])))) {
    bool isFloat = false;
    while (cur < end && std::isdigit(static_cast<unsigned char>(*cur)))
      ++cur;
    if (cur < end && *cur == '.' && cur + 1 < end &&
        std::isdigit(static_cast<unsigned char>(cur[1]))) {
      isFloat = true;
      ++cur;
      while (cur < end && std::isdigit(static_cast<unsigned char>(*cur)))
        ++cur;
    }
    if (cur < end && (*cur == 'e' || *cur == 'E')) {
      const char *save = cur;
      ++cur;
      if (cur < end && (*cur == '+' || *cur == '-'))
        ++cur;
      if (cur < end && std::isdigit(static_cast<unsigned char>(*cur))) {
        isFloat = true;
        while (cur < end && std::isdigit(static_cast<unsigned char>(*cur)))
          ++cur;
      } else {
        cur = save; // `2e` is 2 followed by the identifier e
      }
    }
    return make(isFloat ? Token::Float : Token::Integer);
  }
  if (c == '"') {
    ++cur;
    while (cur < end && *cur != '"' && *cur != '\n')
      ++cur;
    if (cur >= end || *cur != '"') {
      error = "unterminated string";
      return make(Token::Error);
    }
    ++cur;
    return make(Token::String);
  }
  if (c == '-' && cur + 1 < end && cur[1] == '>') {
    cur += 2;
    return make(Token::Punct);
  }
  switch (c) {
  case '(':
  case '[':
    ++depth;
    ++cur;
    return make(Token::Punct);
  case ')':
  case ']':
    if (depth > 0)
      --depth;
    ++cur;
    return make(Token::Punct);
  case '{':
  case '}':
  case ',':
  case ':':
  case '=':
  case '+':
  case '-':
  case '*':
  case '/':
  case '@':
  case '.':
  case ';':
    ++cur;
    return make(Token::Punct);
  default:
    ++cur;
    error = "unexpected character";
    return make(Token::Error);
  }
}
