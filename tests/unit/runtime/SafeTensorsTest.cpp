//===- SafeTensorsTest.cpp - Tests of the safetensors reader and writer ---===//
//
// Round trips, the reference implementation's layout (data/), and one test
// per class of malformed input with the exact message.
//
//===----------------------------------------------------------------------===//

#include "runtime/SafeTensors.h"

#include "TestUtil.h"

#include <cstring>
#include <filesystem>

using namespace loom;
using namespace loom::test;

namespace {

/// A safetensors file with the given header text and dataSize zero bytes.
std::vector<uint8_t> stFile(const std::string &header, size_t dataSize = 0) {
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(uint64_t(header.size()) >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + dataSize, 0);
  return out;
}

std::string parseError(const std::vector<uint8_t> &bytes) {
  ErrorOr<SafeTensorsFile> f = parseSafeTensors(bytes.data(), bytes.size());
  EXPECT_FALSE(f.ok());
  return f.ok() ? "" : f.error();
}

std::string headerError(const std::string &header, size_t dataSize = 0) {
  return parseError(stFile(header, dataSize));
}

Tensor patterned(DType dtype, std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(dtype, std::move(shape));
  for (size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = static_cast<uint8_t>(i * 31 + 7);
  if (dtype == DType::Bool)
    for (uint8_t &b : t.data)
      b &= 1;
  return t;
}

/// The tensors of data/mixed.safetensors, in no particular order.
std::vector<std::pair<std::string, Tensor>> mixedTensors() {
  std::vector<float> weights;
  for (int i = 0; i < 12; ++i)
    weights.push_back(i / 8.0f);
  return {
      {"rnn.weight_ih_l0", Tensor::f32({3, 4}, weights)},
      {"mask", Tensor{DType::Bool, {3}, {1, 0, 1}}},
      {"half", Tensor{DType::F16, {2}, {0x00, 0x3c, 0x00, 0xb4}}},
      {"rnn.bias_ih_l0", Tensor::f32({3}, {0.5f, -1.0f, 2.0f})},
      {"steps", Tensor::i64({}, {7})},
  };
}

TEST(SafeTensorsTest, RoundTripsTensorsAndMetadata) {
  ScratchDir dir;
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"z.f32", patterned(DType::F32, {4, 3})},
      {"a.f64", patterned(DType::F64, {2})},
      {"f16", patterned(DType::F16, {3})},
      {"bf16", patterned(DType::BF16, {1, 3})},
      {"i64", patterned(DType::I64, {})},
      {"i32", patterned(DType::I32, {5})},
      {"i16", patterned(DType::I16, {3})},
      {"i8", patterned(DType::I8, {7})},
      {"u8", patterned(DType::U8, {1})},
      {"bool", patterned(DType::Bool, {2, 2})},
      {"empty", patterned(DType::F32, {0, 4})},
      {"name with \"quotes\" and \xc3\xa9", patterned(DType::F32, {1})},
  };
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "line\nbreak \"quoted\""}};
  std::string path = dir.path("w.safetensors");
  Status s = writeSafeTensors(path, tensors, metadata);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(dir.list(), std::vector<std::string>{"w.safetensors"});

  ErrorOr<SafeTensorsFile> f = readSafeTensors(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->metadata, metadata);
  ASSERT_EQ(f->tensors.size(), tensors.size());
  for (const auto &[name, tensor] : tensors) {
    SCOPED_TRACE(name);
    const Tensor *t = f->find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, tensor.dtype);
    EXPECT_EQ(t->shape, tensor.shape);
    EXPECT_EQ(t->data, tensor.data);
  }
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(SafeTensorsTest, WritesReferenceLayout) {
  // Tensors are ordered by decreasing dtype, then name, whatever the input
  // order, and the bytes match the reference layout exactly.
  std::vector<uint8_t> expected = readBytes(dataPath("mixed.safetensors"));
  ASSERT_FALSE(expected.empty());
  ErrorOr<std::vector<uint8_t>> bytes =
      serializeSafeTensors(mixedTensors(), {{"format", "pt"}, {"step", "10"}});
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()),
            std::string(expected.begin(), expected.end()));
}

TEST(SafeTensorsTest, ReadsReferenceFile) {
  ErrorOr<SafeTensorsFile> f = readSafeTensors(dataPath("mixed.safetensors"));
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->metadata.at("format"), "pt");
  EXPECT_EQ(f->metadata.at("step"), "10");
  // Header order.
  std::vector<std::string> names;
  for (const auto &named : f->tensors)
    names.push_back(named.first);
  EXPECT_EQ(names,
            (std::vector<std::string>{"steps", "rnn.bias_ih_l0",
                                      "rnn.weight_ih_l0", "half", "mask"}));
  for (const auto &[name, tensor] : mixedTensors()) {
    SCOPED_TRACE(name);
    const Tensor *t = f->find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, tensor.dtype);
    EXPECT_EQ(t->shape, tensor.shape);
    EXPECT_EQ(t->data, tensor.data);
  }
  ErrorOr<std::vector<float>> half = toF32Values(*f->find("half"));
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(*half, (std::vector<float>{1.0f, -0.25f}));
}

TEST(SafeTensorsTest, AlignsDataAndPadsHeader) {
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"a", patterned(DType::U8, {3})},   {"b", patterned(DType::F64, {1})},
      {"c", patterned(DType::I16, {1})},  {"d", patterned(DType::F32, {1})},
      {"e", patterned(DType::BF16, {3})}, {"f", patterned(DType::I64, {1})},
  };
  ErrorOr<std::vector<uint8_t>> bytes = serializeSafeTensors(tensors);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  uint64_t headerLen;
  std::memcpy(&headerLen, bytes->data(), 8);
  EXPECT_EQ(headerLen % 8, 0u);
  // No metadata key when there is no metadata.
  std::string header(bytes->begin() + 8, bytes->begin() + 8 + headerLen);
  EXPECT_EQ(header.find("__metadata__"), std::string::npos);
  EXPECT_TRUE(header.back() == ' ' || header.back() == '}');

  ErrorOr<SafeTensorsFile> f = parseSafeTensors(bytes->data(), bytes->size());
  ASSERT_TRUE(f.ok()) << f.error();
  // Find each tensor's file offset from the header and check alignment.
  for (const auto &[name, tensor] : f->tensors) {
    std::string key = "\"" + name + "\":{";
    size_t at = header.find(key);
    ASSERT_NE(at, std::string::npos);
    size_t offsets = header.find("\"data_offsets\":[", at) + 16;
    uint64_t begin = std::stoull(header.substr(offsets));
    EXPECT_EQ(begin % dtypeSize(tensor.dtype), 0u) << name;
  }
}

TEST(SafeTensorsTest, FileTooShort) {
  EXPECT_EQ(parseError({1, 2, 3, 4, 5}),
            "safetensors: file has 5 bytes, too short for the 8-byte header "
            "length");
}

TEST(SafeTensorsTest, HeaderLengthTooLarge) {
  std::vector<uint8_t> bytes = stFile("{}", 18);
  bytes[0] = 0xe8; // 1000
  bytes[1] = 0x03;
  EXPECT_EQ(parseError(bytes),
            "safetensors: header length 1000 exceeds the 20 bytes after the "
            "length field (file has 28 bytes)");
  std::vector<uint8_t> huge = stFile("{}");
  std::memset(huge.data(), 0xff, 8);
  EXPECT_EQ(parseError(huge),
            "safetensors: header length 18446744073709551615 exceeds the 2 "
            "bytes after the length field (file has 10 bytes)");
}

TEST(SafeTensorsTest, HeaderOverTheFormatsLimit) {
  // The reference implementation's limit: 100,000,000 bytes.
  std::string header = "{}" + std::string(100000000 - 1, ' ');
  EXPECT_EQ(parseError(stFile(header)),
            "safetensors: header length 100000001 at offset 0 is over the "
            "limit of 100000000 bytes (the safetensors format's own)");
}

TEST(SafeTensorsTest, BadJsonReportsFileOffset) {
  EXPECT_EQ(headerError(R"({"a":{"dtype":"F32",}})"),
            "safetensors: invalid header JSON: expected a string key in JSON "
            "object, found '}' at offset 28");
  EXPECT_EQ(headerError(R"({"a":{"dtype":"F32","shape":[1.0]}})"),
            "safetensors: invalid header JSON: JSON numbers must be integers "
            "here at offset 37");
  EXPECT_EQ(headerError("[]"),
            "safetensors: header must be a JSON object (at offset 8)");
}

TEST(SafeTensorsTest, MissingFields) {
  EXPECT_EQ(headerError(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4),
            "safetensors: tensor 'w': missing 'dtype' (at offset 13)");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4),
            "safetensors: tensor 'w': missing 'shape' (at offset 13)");
  EXPECT_EQ(headerError(R"({"w":{"dtype":"F32","shape":[1]}})", 4),
            "safetensors: tensor 'w': missing 'data_offsets' (at offset 13)");
  EXPECT_EQ(headerError(R"({"w":[]})"),
            "safetensors: tensor 'w': entry must be a JSON object (at offset "
            "13)");
}

TEST(SafeTensorsTest, IllTypedFields) {
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})", 4),
      "safetensors: tensor 'w': 'dtype' must be a string (at offset 22)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4),
      "safetensors: tensor 'w': 'shape' must be an array of integers (at "
      "offset 36)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})",
                  4),
      "safetensors: tensor 'w': 'shape' must be an array of integers (at "
      "offset 37)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                  4),
      "safetensors: tensor 'w': negative dimension -1 in 'shape' (at offset "
      "37)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
      "safetensors: tensor 'w': 'data_offsets' must be an array of two "
      "non-negative integers (at offset 55)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
                  4),
      "safetensors: tensor 'w': 'data_offsets' must be an array of two "
      "non-negative integers (at offset 55)");
  EXPECT_EQ(
      headerError(
          R"({"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
          4),
      "safetensors: tensor 'w': duplicate key 'dtype' (at offset 28)");
  EXPECT_EQ(headerError(R"({"__metadata__":{"a":1}})"),
            "safetensors: '__metadata__' value for 'a' must be a string (at "
            "offset 29)");
  EXPECT_EQ(headerError(R"({"__metadata__":[]})"),
            "safetensors: '__metadata__' must be an object of strings (at "
            "offset 24)");
}

TEST(SafeTensorsTest, IgnoresUnknownEntryKeys) {
  // The reference implementation ignores extra keys in an entry; so do we.
  std::vector<uint8_t> bytes = stFile(
      R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":[]}})", 2);
  ErrorOr<SafeTensorsFile> f = parseSafeTensors(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->tensors.size(), 1u);
}

TEST(SafeTensorsTest, OffsetsOutOfRange) {
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                  4),
      "safetensors: tensor 'w': data_offsets [0, 8] run past the end of the "
      "data (4 bytes from offset 62) (at offset 55)");
  EXPECT_EQ(
      headerError(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                  8),
      "safetensors: tensor 'w': data_offsets [8, 4] end before they begin "
      "(at offset 55)");
}

TEST(SafeTensorsTest, SizeMismatch) {
  std::string header =
      R"({"rnn.weight_ih_l0":{"dtype":"F32","shape":[4,8],"data_offsets":[0,100]}})";
  EXPECT_EQ(headerError(header, 100),
            "safetensors: tensor 'rnn.weight_ih_l0': data_offsets [0, 100] "
            "give 100 bytes but shape [4, 8] of F32 needs 128 (at offset "
            "72)");
}

TEST(SafeTensorsTest, ShapeOverflow) {
  EXPECT_EQ(
      headerError(
          R"({"w":{"dtype":"F64","shape":[4611686018427387904,2],"data_offsets":[0,8]}})",
          8),
      "safetensors: tensor 'w': shape [4611686018427387904, 2] of F64 is too "
      "large: its byte size overflows int64 (at offset 36)");
}

TEST(SafeTensorsTest, DuplicateNames) {
  EXPECT_EQ(
      headerError(
          R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
          1),
      "safetensors: duplicate tensor name 'w' (at offset 61)");
}

TEST(SafeTensorsTest, UnknownDType) {
  EXPECT_EQ(
      headerError(
          R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1),
      "safetensors: tensor 'w': unsupported dtype 'F8_E4M3' (supported: F32, "
      "F64, F16, BF16, I64, I32, I16, I8, U8, BOOL) (at offset 22)");
  EXPECT_EQ(headerError(
                R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4),
            "safetensors: tensor 'w': unsupported dtype 'f32' (supported: F32, "
            "F64, F16, BF16, I64, I32, I16, I8, U8, BOOL) (at offset 22)");
}

TEST(SafeTensorsTest, PathErrors) {
  ScratchDir dir;
  std::string path = dir.path("w.safetensors");
  writeBytes(path, {1, 2, 3});
  ErrorOr<SafeTensorsFile> f = readSafeTensors(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error(),
            path +
                ": file has 3 bytes, too short for the 8-byte header length");
  ErrorOr<SafeTensorsFile> missing = readSafeTensors(dir.path("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(),
            dir.path("nope") + ": cannot open: No such file or directory");
}

TEST(SafeTensorsTest, WriteRejectsBadInput) {
  ScratchDir dir;
  std::string path = dir.path("w.safetensors");
  Status dup = writeSafeTensors(
      path, {{"a", Tensor::f32({1}, {1.0f})}, {"a", Tensor::i64({1}, {1})}});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error(), path + ": duplicate tensor name 'a'");

  Status meta =
      writeSafeTensors(path, {{"__metadata__", Tensor::f32({1}, {1.0f})}});
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.error(), path + ": '__metadata__' cannot be a tensor name");

  Status size = writeSafeTensors(path, {{"w", Tensor{DType::F32, {2}, {0}}}});
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error(), path + ": tensor 'w': holds 1 bytes, which does "
                                 "not match shape [2] of F32");

  Status utf8 = writeSafeTensors(path, {{"\xff", Tensor::f32({1}, {1.0f})}});
  ASSERT_FALSE(utf8.ok());
  EXPECT_EQ(utf8.error(), path + ": tensor name '\xff' is not valid UTF-8");
  EXPECT_TRUE(dir.list().empty());
}

TEST(SafeTensorsTest, FailedWriteLeavesNoFile) {
  ScratchDir dir;
  std::string missingDir = dir.path("no-such-dir");
  Status s = writeSafeTensors(missingDir + "/w.safetensors",
                              {{"w", Tensor::f32({1}, {1.0f})}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("No such file or directory"), std::string::npos)
      << s.error();
  EXPECT_FALSE(std::filesystem::exists(missingDir));
  EXPECT_TRUE(dir.list().empty());
}

} // namespace
