//===- JsonTest.cpp - Tests of the strict JSON parser ---------------------===//

#include "runtime/Json.h"

#include <gtest/gtest.h>

using namespace loom;

namespace {

ErrorOr<json::Value> parse(const std::string &text, size_t base = 0) {
  return json::parse(text.data(), text.size(), base);
}

std::string parseError(const std::string &text, size_t base = 0) {
  ErrorOr<json::Value> v = parse(text, base);
  EXPECT_FALSE(v.ok()) << "parsed: " << text;
  return v.ok() ? "" : v.error();
}

TEST(JsonTest, ParsesObjectsArraysStringsIntegers) {
  ErrorOr<json::Value> v =
      parse(" {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808],"
            " \"b\": {\"c\": \"d\"}, \"e\": []} ");
  ASSERT_TRUE(v.ok()) << v.error();
  ASSERT_TRUE(v->isObject());
  ASSERT_EQ(v->members.size(), 3u);
  EXPECT_EQ(v->offset, 1u);
  EXPECT_EQ(v->members[0].key, "a");
  EXPECT_EQ(v->members[0].keyOffset, 2u);
  const json::Value &a = v->members[0].value;
  ASSERT_TRUE(a.isArray());
  ASSERT_EQ(a.elements.size(), 5u);
  EXPECT_EQ(a.elements[1].integer, -2);
  EXPECT_EQ(a.elements[3].integer, INT64_MAX);
  EXPECT_EQ(a.elements[4].integer, INT64_MIN);
  EXPECT_EQ(v->members[1].value.members[0].value.string, "d");
  EXPECT_TRUE(v->members[2].value.elements.empty());
}

TEST(JsonTest, StringEscapes) {
  ErrorOr<json::Value> v =
      parse(R"("q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20ac\ud83d\ude00 raw é")");
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->string, "q\" b\\ s/ \b\f\n\r\t A\xc3\xa9\xe2\x82\xac"
                       "\xf0\x9f\x98\x80 raw \xc3\xa9");
}

TEST(JsonTest, QuotedRoundTrip) {
  std::string s = "a\"b\\c\n\x01 \xc3\xa9";
  std::string quoted;
  json::appendQuoted(quoted, s);
  EXPECT_EQ(quoted, "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9\"");
  ErrorOr<json::Value> v = parse(quoted);
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->string, s);
}

TEST(JsonTest, ErrorsGiveOffsets) {
  EXPECT_EQ(parseError("{\"a\":1,}", 8),
            "expected a string key in JSON object, found '}' at offset 15");
  EXPECT_EQ(parseError("{\"a\" 1}"),
            "expected ':' after JSON object key, found '1' at offset 5");
  EXPECT_EQ(parseError("[1 2]"),
            "expected ',' or ']' in JSON array, found '2' at offset 3");
  EXPECT_EQ(parseError("{} x"),
            "unexpected 'x' after the JSON value at offset 3");
  EXPECT_EQ(parseError("\"abc"), "unterminated JSON string at offset 0");
  EXPECT_EQ(parseError(""),
            "unexpected end of input, expected a JSON value at offset 0");
}

TEST(JsonTest, RejectsNonIntegerValues) {
  EXPECT_EQ(parseError("[1.5]"),
            "JSON numbers must be integers here at offset 1");
  EXPECT_EQ(parseError("[1e3]"),
            "JSON numbers must be integers here at offset 1");
  EXPECT_EQ(parseError("[true]"), "unsupported JSON value (true, false and "
                                  "null are not allowed here) at offset 1");
  EXPECT_EQ(parseError("null"), "unsupported JSON value (true, false and "
                                "null are not allowed here) at offset 0");
  EXPECT_EQ(parseError("[01]"),
            "JSON numbers must not have leading zeros at offset 1");
  EXPECT_EQ(parseError("[-]"), "expected a digit, found ']' at offset 2");
  EXPECT_EQ(parseError("[9223372036854775808]"),
            "integer does not fit in 64 bits at offset 1");
  EXPECT_EQ(parseError("{'a': 1}"),
            "expected a string key in JSON object, found ''' at offset 1");
}

TEST(JsonTest, RejectsBadStrings) {
  EXPECT_EQ(parseError("\"a\nb\""),
            "unescaped control character in JSON string at offset 2");
  EXPECT_EQ(parseError(R"("\x")"), "invalid escape sequence '\\x' at offset 1");
  EXPECT_EQ(parseError(R"("\u12")"),
            "invalid \\u escape: expected four hex digits at offset 1");
  EXPECT_EQ(parseError(R"("\ud800")"),
            "unpaired high surrogate in \\u escape at offset 1");
  EXPECT_EQ(parseError(R"("\udc00")"),
            "unpaired low surrogate in \\u escape at offset 1");
  EXPECT_EQ(parseError("\"\xff\""), "invalid UTF-8 in JSON string at offset 1");
  // Overlong encoding of '/'.
  EXPECT_EQ(parseError("\"\xe0\x80\xaf\""),
            "invalid UTF-8 in JSON string at offset 1");
  // An encoded surrogate.
  EXPECT_EQ(parseError("\"\xed\xa0\x80\""),
            "invalid UTF-8 in JSON string at offset 1");
  EXPECT_EQ(parseError("\"\xc3\""), "invalid UTF-8 in JSON string at offset 1");
}

TEST(JsonTest, CapsNesting) {
  std::string ok(json::kMaxDepth, '[');
  ok += std::string(json::kMaxDepth, ']');
  EXPECT_TRUE(parse(ok).ok());

  std::string deep(json::kMaxDepth + 1, '[');
  deep += std::string(json::kMaxDepth + 1, ']');
  EXPECT_EQ(parseError(deep), "JSON nested deeper than 64 levels at offset 64");

  // Far deeper input fails the same way instead of exhausting the stack.
  EXPECT_FALSE(parse(std::string(100000, '[')).ok());
}

} // namespace
