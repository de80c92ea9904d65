//===- Lexer.cpp - tokens of the loom DSL -----------------------------===//
#include "frontend/Lexer.h"

#include "llvm/Support/ConvertUTF.h"

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
  default: {
    ++cur;
    auto byte = static_cast<unsigned char>(c);
    unsigned n = llvm::getNumBytesForUTF8(byte);
    if (byte >= 0x20 && byte < 0x7f) {
      error = std::string("unexpected character '") + c + "'";
    } else if (byte >= 0x80 && n > 1 && start + n <= end &&
               llvm::isLegalUTF8Sequence(
                   reinterpret_cast<const llvm::UTF8 *>(start),
                   reinterpret_cast<const llvm::UTF8 *>(start + n))) {
      cur = start + n;
      error = "unexpected character '" + std::string(start, n) +
              "' (loom source is ASCII outside comments and strings)";
    } else {
      static const char hex[] = "0123456789ABCDEF";
      error = std::string("unexpected byte 0x") + hex[byte >> 4] +
              hex[byte & 15] +
              " (loom source is ASCII outside comments and strings)";
    }
    return make(Token::Error);
  }
  }
}
