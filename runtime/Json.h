//===- Json.h - Small strict JSON parser for file headers -------*- C++ -*-===//
//
// Parses the subset of JSON that safetensors headers use -- objects, arrays,
// strings and integers -- and rejects everything else (floats, true, false,
// null) with a message giving the byte offset. Kept free of LLVM so the
// file readers build standalone.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_JSON_H
#define LOOM_RUNTIME_JSON_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom::json {

struct Member;

struct Value {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Integer;
  /// Offset of the value's first byte, in the caller's coordinates (the
  /// baseOffset passed to parse plus the position in the text).
  size_t offset = 0;
  std::string string;
  int64_t integer = 0;
  std::vector<Value> elements;
  /// Object members in source order; duplicates are kept for the caller to
  /// judge.
  std::vector<Member> members;

  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isInteger() const { return kind == Kind::Integer; }
};

struct Member {
  std::string key;
  size_t keyOffset = 0;
  Value value;
};

/// Objects and arrays may nest this deep; deeper input is rejected rather
/// than risking the stack.
constexpr int kMaxDepth = 64;

/// Parses one JSON value filling the whole text (surrounding whitespace
/// allowed). Error messages read "... at offset N" with N = baseOffset +
/// position in the text.
ErrorOr<Value> parse(const char *text, size_t size, size_t baseOffset = 0);

/// Whether s is well-formed UTF-8 (no overlong forms, surrogates or code
/// points above U+10FFFF), as the parser requires of strings.
bool isValidUtf8(const std::string &s);

/// Appends s to out as a JSON string literal (quotes included), escaping as
/// serde_json does: '"', '\\' and control characters; other bytes verbatim.
void appendQuoted(std::string &out, const std::string &s);

} // namespace loom::json

#endif // LOOM_RUNTIME_JSON_H
