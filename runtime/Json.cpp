//===- Json.cpp - Small strict JSON parser for file headers ---------------===//
//
// A recursive-descent parser over RFC 8259 restricted to objects, arrays,
// strings and integers. Strings must be valid UTF-8; \u escapes (including
// surrogate pairs) are decoded to UTF-8.
//
//===----------------------------------------------------------------------===//

#include "runtime/Json.h"

using namespace loom;
using namespace loom::json;

namespace {

class Parser {
public:
  Parser(const char *text, size_t size, size_t base)
      : text(text), size(size), base(base) {}

  ErrorOr<Value> parseDocument();

private:
  const char *text;
  size_t size;
  size_t base;
  size_t pos = 0;

  Error errorAt(size_t at, const std::string &what) const {
    return Error{what + " at offset " + std::to_string(base + at)};
  }
  Error errorHere(const std::string &what) const { return errorAt(pos, what); }

  bool atEnd() const { return pos >= size; }
  unsigned char peek() const {
    return atEnd() ? 0 : static_cast<unsigned char>(text[pos]);
  }
  std::string found() const {
    if (atEnd())
      return "end of input";
    unsigned char c = peek();
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + static_cast<char>(c) + "'";
    return "byte " + std::to_string(c);
  }
  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos;
  }

  Status parseValue(Value &out, int depth);
  Status parseObject(Value &out, int depth);
  Status parseArray(Value &out, int depth);
  Status parseString(std::string &out);
  Status parseInteger(Value &out);
  Status parseEscape(std::string &out);
  Status parseUtf8(std::string &out);
  bool parseHex4(unsigned &out);
};

} // namespace

static void appendUtf8(std::string &out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

ErrorOr<Value> Parser::parseDocument() {
  Value v;
  skipSpace();
  if (Status s = parseValue(v, 0); !s)
    return Error{s.error()};
  skipSpace();
  if (!atEnd())
    return errorHere("unexpected " + found() + " after the JSON value");
  return v;
}

Status Parser::parseValue(Value &out, int depth) {
  out.offset = base + pos;
  unsigned char c = peek();
  if (c == '{')
    return parseObject(out, depth + 1);
  if (c == '[')
    return parseArray(out, depth + 1);
  if (c == '"') {
    out.kind = Value::Kind::String;
    return parseString(out.string);
  }
  if (c == '-' || (c >= '0' && c <= '9'))
    return parseInteger(out);
  if (atEnd())
    return errorHere("unexpected end of input, expected a JSON value");
  if (c == 't' || c == 'f' || c == 'n')
    return errorHere("unsupported JSON value (true, false and null are not "
                     "allowed here)");
  return errorHere("expected a JSON value, found " + found());
}

Status Parser::parseObject(Value &out, int depth) {
  if (depth > kMaxDepth)
    return errorHere("JSON nested deeper than " + std::to_string(kMaxDepth) +
                     " levels");
  out.kind = Value::Kind::Object;
  ++pos; // '{'
  skipSpace();
  if (peek() == '}') {
    ++pos;
    return Status::success();
  }
  while (true) {
    skipSpace();
    if (peek() != '"')
      return errorHere("expected a string key in JSON object, found " +
                       found());
    Member m;
    m.keyOffset = base + pos;
    if (Status s = parseString(m.key); !s)
      return s;
    skipSpace();
    if (peek() != ':')
      return errorHere("expected ':' after JSON object key, found " + found());
    ++pos;
    skipSpace();
    if (Status s = parseValue(m.value, depth); !s)
      return s;
    out.members.push_back(std::move(m));
    skipSpace();
    if (peek() == ',') {
      ++pos;
      continue;
    }
    if (peek() == '}') {
      ++pos;
      return Status::success();
    }
    return errorHere("expected ',' or '}' in JSON object, found " + found());
  }
}

Status Parser::parseArray(Value &out, int depth) {
  if (depth > kMaxDepth)
    return errorHere("JSON nested deeper than " + std::to_string(kMaxDepth) +
                     " levels");
  out.kind = Value::Kind::Array;
  ++pos; // '['
  skipSpace();
  if (peek() == ']') {
    ++pos;
    return Status::success();
  }
  while (true) {
    skipSpace();
    Value element;
    if (Status s = parseValue(element, depth); !s)
      return s;
    out.elements.push_back(std::move(element));
    skipSpace();
    if (peek() == ',') {
      ++pos;
      continue;
    }
    if (peek() == ']') {
      ++pos;
      return Status::success();
    }
    return errorHere("expected ',' or ']' in JSON array, found " + found());
  }
}

Status Parser::parseInteger(Value &out) {
  out.kind = Value::Kind::Integer;
  size_t start = pos;
  bool negative = peek() == '-';
  if (negative)
    ++pos;
  if (!(peek() >= '0' && peek() <= '9'))
    return errorHere("expected a digit, found " + found());
  if (peek() == '0' && pos + 1 < size && text[pos + 1] >= '0' &&
      text[pos + 1] <= '9')
    return errorAt(start, "JSON numbers must not have leading zeros");
  // Accumulate negatively so that INT64_MIN parses too.
  int64_t value = 0;
  while (peek() >= '0' && peek() <= '9') {
    if (__builtin_mul_overflow(value, int64_t(10), &value) ||
        __builtin_sub_overflow(value, int64_t(peek() - '0'), &value))
      return errorAt(start, "integer does not fit in 64 bits");
    ++pos;
  }
  if (peek() == '.' || peek() == 'e' || peek() == 'E')
    return errorAt(start, "JSON numbers must be integers here");
  if (!negative) {
    if (value == INT64_MIN)
      return errorAt(start, "integer does not fit in 64 bits");
    value = -value;
  }
  out.integer = value;
  return Status::success();
}

bool Parser::parseHex4(unsigned &out) {
  if (size - pos < 4)
    return false;
  out = 0;
  for (int i = 0; i < 4; ++i) {
    char c = text[pos + i];
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return false;
    out = out * 16 + digit;
  }
  pos += 4;
  return true;
}

Status Parser::parseEscape(std::string &out) {
  size_t start = pos;
  ++pos; // '\\'
  if (atEnd())
    return errorAt(start, "unterminated escape sequence");
  char c = static_cast<char>(peek());
  ++pos;
  switch (c) {
  case '"':
  case '\\':
  case '/':
    out += c;
    return Status::success();
  case 'b':
    out += '\b';
    return Status::success();
  case 'f':
    out += '\f';
    return Status::success();
  case 'n':
    out += '\n';
    return Status::success();
  case 'r':
    out += '\r';
    return Status::success();
  case 't':
    out += '\t';
    return Status::success();
  case 'u':
    break;
  default:
    return errorAt(start, std::string("invalid escape sequence '\\") + c + "'");
  }
  unsigned cp;
  if (!parseHex4(cp))
    return errorAt(start, "invalid \\u escape: expected four hex digits");
  if (cp >= 0xdc00 && cp <= 0xdfff)
    return errorAt(start, "unpaired low surrogate in \\u escape");
  if (cp >= 0xd800 && cp <= 0xdbff) {
    unsigned low;
    if (!(size - pos >= 2 && text[pos] == '\\' && text[pos + 1] == 'u'))
      return errorAt(start, "unpaired high surrogate in \\u escape");
    pos += 2;
    if (!parseHex4(low))
      return errorAt(start, "invalid \\u escape: expected four hex digits");
    if (low < 0xdc00 || low > 0xdfff)
      return errorAt(start, "unpaired high surrogate in \\u escape");
    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
  }
  appendUtf8(out, cp);
  return Status::success();
}

/// Copies one multi-byte UTF-8 sequence, rejecting overlong forms, encoded
/// surrogates and code points above U+10FFFF.
Status Parser::parseUtf8(std::string &out) {
  size_t start = pos;
  unsigned char lead = peek();
  unsigned length, cp, min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, cp = lead & 0x1f, min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, cp = lead & 0x0f, min = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return errorHere("invalid UTF-8 in JSON string");
  }
  if (size - pos < length)
    return errorHere("invalid UTF-8 in JSON string");
  for (unsigned i = 1; i < length; ++i) {
    unsigned char c = static_cast<unsigned char>(text[pos + i]);
    if ((c & 0xc0) != 0x80)
      return errorAt(start, "invalid UTF-8 in JSON string");
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return errorAt(start, "invalid UTF-8 in JSON string");
  out.append(text + pos, length);
  pos += length;
  return Status::success();
}

Status Parser::parseString(std::string &out) {
  size_t start = pos;
  ++pos; // '"'
  out.clear();
  while (true) {
    if (atEnd())
      return errorAt(start, "unterminated JSON string");
    unsigned char c = peek();
    if (c == '"') {
      ++pos;
      return Status::success();
    }
    if (c == '\\') {
      if (Status s = parseEscape(out); !s)
        return s;
    } else if (c < 0x20) {
      return errorHere("unescaped control character in JSON string");
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++pos;
    } else if (Status s = parseUtf8(out); !s) {
      return s;
    }
  }
}

ErrorOr<Value> json::parse(const char *text, size_t size, size_t baseOffset) {
  return Parser(text, size, baseOffset).parseDocument();
}

bool json::isValidUtf8(const std::string &s) {
  // Reuse the parser's string rules on the quoted form.
  std::string quoted;
  appendQuoted(quoted, s);
  return parse(quoted.data(), quoted.size()).ok();
}

void json::appendQuoted(std::string &out, const std::string &s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
      } else {
        out += ch;
      }
    }
  }
  out += '"';
}
