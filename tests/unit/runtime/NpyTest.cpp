//===- NpyTest.cpp - Tests of the .npy reader and writer ------------------===//
//
// Round trips, compatibility with files numpy wrote (data/), and one test
// per class of malformed input with the exact message.
//
//===----------------------------------------------------------------------===//

#include "runtime/Npy.h"

#include "TestUtil.h"

#include <cmath>
#include <cstring>
#include <filesystem>

using namespace loom;
using namespace loom::test;

namespace {

/// A .npy file with the given header text (unpadded) and data bytes.
std::vector<uint8_t> npyFile(const std::string &header,
                             const std::vector<uint8_t> &data = {},
                             unsigned major = 1) {
  std::vector<uint8_t> out = {
      0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  size_t lengthBytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < lengthBytes; ++i)
    out.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string parseError(const std::vector<uint8_t> &bytes) {
  ErrorOr<Tensor> t = parseNpy(bytes.data(), bytes.size());
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.error();
}

std::string headerError(const std::string &header,
                        const std::vector<uint8_t> &data = {}) {
  return parseError(npyFile(header, data));
}

Tensor patterned(DType dtype, std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(dtype, std::move(shape));
  for (size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = static_cast<uint8_t>(i * 37 + 11);
  if (dtype == DType::Bool)
    for (uint8_t &b : t.data)
      b &= 1;
  return t;
}

void expectSame(const Tensor &a, const Tensor &b) {
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.data, b.data);
}

TEST(NpyTest, RoundTripsEveryDTypeAndShape) {
  ScratchDir dir;
  const DType dtypes[] = {DType::F32, DType::F64, DType::F16,
                          DType::I64, DType::I32, DType::I16,
                          DType::I8,  DType::U8,  DType::Bool};
  const std::vector<std::vector<int64_t>> shapes = {
      {}, {0}, {5}, {2, 3}, {0, 3}, {3, 0}, {2, 1, 4}};
  for (DType dtype : dtypes) {
    for (const auto &shape : shapes) {
      SCOPED_TRACE(std::string(dtypeName(dtype)) + " " + shapeString(shape));
      Tensor t = patterned(dtype, shape);
      std::string path = dir.path("t.npy");
      Status s = writeNpy(path, t);
      ASSERT_TRUE(s.ok()) << s.error();
      ErrorOr<Tensor> back = readNpy(path);
      ASSERT_TRUE(back.ok()) << back.error();
      expectSame(*back, t);
      // The data section starts 64-byte aligned, as numpy lays it out.
      EXPECT_EQ((readBytes(path).size() - t.data.size()) % 64, 0u);
    }
  }
  // Only the final file remains: no temporary files left behind.
  EXPECT_EQ(dir.list(), std::vector<std::string>{"t.npy"});
}

TEST(NpyTest, SerializeMatchesNumpyByteForByte) {
  for (const char *name :
       {"f32_2x3.npy", "i64_5.npy", "f64_scalar.npy", "bool_2x2.npy",
        "f16_4.npy", "f32_0x3.npy", "i32_3.npy", "u8_4.npy"}) {
    SCOPED_TRACE(name);
    std::vector<uint8_t> original = readBytes(dataPath(name));
    ASSERT_FALSE(original.empty());
    ErrorOr<Tensor> t = parseNpy(original.data(), original.size());
    ASSERT_TRUE(t.ok()) << t.error();
    ErrorOr<std::vector<uint8_t>> bytes = serializeNpy(*t);
    ASSERT_TRUE(bytes.ok()) << bytes.error();
    EXPECT_EQ(*bytes, original);
  }
}

TEST(NpyTest, ReadsNumpyFiles) {
  ErrorOr<Tensor> f32 = readNpy(dataPath("f32_2x3.npy"));
  ASSERT_TRUE(f32.ok()) << f32.error();
  EXPECT_EQ(f32->dtype, DType::F32);
  EXPECT_EQ(f32->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::vector<float>(f32->f32Data(), f32->f32Data() + 6),
            (std::vector<float>{0, 0.25, 0.5, 0.75, 1, 1.25}));

  ErrorOr<Tensor> i64 = readNpy(dataPath("i64_5.npy"));
  ASSERT_TRUE(i64.ok()) << i64.error();
  EXPECT_EQ(
      std::vector<int64_t>(i64->i64Data(), i64->i64Data() + 5),
      (std::vector<int64_t>{-3, 0, 7, int64_t(1) << 40, -(int64_t(1) << 62)}));

  ErrorOr<Tensor> f64 = readNpy(dataPath("f64_scalar.npy"));
  ASSERT_TRUE(f64.ok()) << f64.error();
  EXPECT_EQ(f64->dtype, DType::F64);
  EXPECT_TRUE(f64->shape.empty());
  double d;
  std::memcpy(&d, f64->data.data(), sizeof d);
  EXPECT_EQ(d, 3.25);

  ErrorOr<Tensor> b = readNpy(dataPath("bool_2x2.npy"));
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->dtype, DType::Bool);
  EXPECT_EQ(b->data, (std::vector<uint8_t>{1, 0, 0, 1}));

  ErrorOr<Tensor> f16 = readNpy(dataPath("f16_4.npy"));
  ASSERT_TRUE(f16.ok()) << f16.error();
  ErrorOr<std::vector<float>> values = toF32Values(*f16);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, (std::vector<float>{1, -2, 65504, std::ldexp(1.0f, -24)}));

  ErrorOr<Tensor> empty = readNpy(dataPath("f32_0x3.npy"));
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(empty->data.empty());

  ErrorOr<Tensor> i32 = readNpy(dataPath("i32_3.npy"));
  ASSERT_TRUE(i32.ok()) << i32.error();
  ErrorOr<std::vector<int64_t>> ints = toI64Values(*i32);
  ASSERT_TRUE(ints.ok());
  EXPECT_EQ(*ints, (std::vector<int64_t>{1, -1, 2147483647}));

  ErrorOr<Tensor> u8 = readNpy(dataPath("u8_4.npy"));
  ASSERT_TRUE(u8.ok()) << u8.error();
  EXPECT_EQ(u8->data, (std::vector<uint8_t>{0, 1, 128, 255}));
}

TEST(NpyTest, ReadsVersion2And3) {
  ErrorOr<Tensor> v2 = readNpy(dataPath("i16_3_v2.npy"));
  ASSERT_TRUE(v2.ok()) << v2.error();
  EXPECT_EQ(v2->dtype, DType::I16);
  EXPECT_EQ(v2->shape, (std::vector<int64_t>{3}));
  int16_t shorts[3];
  std::memcpy(shorts, v2->data.data(), sizeof shorts);
  EXPECT_EQ(shorts[0], 1);
  EXPECT_EQ(shorts[1], -2);
  EXPECT_EQ(shorts[2], 300);

  // Written by hand with keys reordered and irregular spacing.
  ErrorOr<Tensor> v3 = readNpy(dataPath("f32_1x2_v3.npy"));
  ASSERT_TRUE(v3.ok()) << v3.error();
  EXPECT_EQ(v3->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(v3->f32Data()[0], 1.5f);
  EXPECT_EQ(v3->f32Data()[1], -0.5f);
}

TEST(NpyTest, WritesVersion2WhenHeaderIsLong) {
  // 30000 dimensions of size 1 need a header longer than a u16 can hold.
  Tensor t = Tensor::f32(std::vector<int64_t>(30000, 1), {2.5f});
  ErrorOr<std::vector<uint8_t>> bytes = serializeNpy(t);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  EXPECT_EQ((*bytes)[6], 2);
  EXPECT_EQ(bytes->size() % 64, 4u);
  // Such a header is over NumPy's (and loom's) reading limit of 10000 bytes.
  ErrorOr<Tensor> back = parseNpy(bytes->data(), bytes->size());
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error(), "npy: header length " +
                              std::to_string(bytes->size() - 12 - 4) +
                              " at offset 8 is over the limit of 10000 bytes "
                              "(NumPy's own max_header_size)");
  // 2000 dimensions still fit in 10000 bytes, and a version 2 file.
  Tensor u = Tensor::f32(std::vector<int64_t>(2000, 1), {2.5f});
  bytes = serializeNpy(u);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  back = parseNpy(bytes->data(), bytes->size());
  ASSERT_TRUE(back.ok()) << back.error();
  expectSame(*back, u);
}

TEST(NpyTest, HeaderSyntaxVariants) {
  const std::vector<uint8_t> four(4, 0);
  for (const char *header :
       {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
        "{\"shape\":(1,),\"descr\":\"<f4\",\"fortran_order\":False}",
        "  { 'fortran_order' : False , 'shape' : ( 1 , ) , 'descr' : '=f4' "
        "}  \n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1L,)}",
        "{'descr':'<i4','fortran_order':False,'shape':(1,)}",
        "{'descr':'<i4','fortran_order':False,'shape':(1, 1, 1)}"}) {
    SCOPED_TRACE(header);
    std::vector<uint8_t> bytes = npyFile(header, four);
    ErrorOr<Tensor> t = parseNpy(bytes.data(), bytes.size());
    EXPECT_TRUE(t.ok()) << t.error();
  }
  // One-byte types accept every byte-order mark.
  for (const char *descr : {"|u1", "<u1", "=u1", ">u1", "|i1", "|b1"}) {
    SCOPED_TRACE(descr);
    std::vector<uint8_t> bytes =
        npyFile(std::string("{'descr': '") + descr +
                    "', 'fortran_order': False, 'shape': (2,), }",
                {1, 0});
    ErrorOr<Tensor> t = parseNpy(bytes.data(), bytes.size());
    EXPECT_TRUE(t.ok()) << t.error();
  }
}

TEST(NpyTest, BadMagic) {
  EXPECT_EQ(parseError(toBytes("PK\x03\x04 not numpy at all")),
            "npy: bad magic at offset 0: not a .npy file (expected "
            "\\x93NUMPY)");
}

TEST(NpyTest, TruncatedHeader) {
  EXPECT_EQ(parseError({}), "npy: truncated header: file has 0 bytes, too "
                            "short for the magic and version");
  std::vector<uint8_t> bytes = readBytes(dataPath("f32_2x3.npy"));
  bytes.resize(9);
  EXPECT_EQ(parseError(bytes),
            "npy: truncated header: file has 9 bytes, too short for the "
            "version 1 preamble of 10 bytes");
  std::vector<uint8_t> v2 = readBytes(dataPath("i16_3_v2.npy"));
  v2.resize(11);
  EXPECT_EQ(parseError(v2),
            "npy: truncated header: file has 11 bytes, too short for the "
            "version 2 preamble of 12 bytes");
}

TEST(NpyTest, UnsupportedVersion) {
  std::vector<uint8_t> bytes = readBytes(dataPath("f32_2x3.npy"));
  bytes[6] = 4;
  EXPECT_EQ(parseError(bytes), "npy: unsupported format version 4.0 at "
                               "offset 6 (supported: 1.0, 2.0, 3.0)");
}

TEST(NpyTest, HeaderLengthBeyondFile) {
  std::vector<uint8_t> bytes = readBytes(dataPath("f32_2x3.npy"));
  bytes.resize(50);
  EXPECT_EQ(parseError(bytes),
            "npy: header length 118 at offset 8 runs past the end of the "
            "file (header would end at byte 128, file has 50)");
  // A u32 length near 4 GiB in a tiny version 2 file.
  std::vector<uint8_t> v2 = {0x93, 'N',  'U',  'M',  'P',  'Y', 2,
                             0,    0xff, 0xff, 0xff, 0xff, '{', '}'};
  EXPECT_EQ(parseError(v2),
            "npy: header length 4294967295 at offset 8 runs past the end of "
            "the file (header would end at byte 4294967307, file has 14)");
}

TEST(NpyTest, BadHeaderDict) {
  EXPECT_EQ(headerError("'descr': '<f4'"),
            "npy: header: expected '{' to start the header dict, found ''' "
            "at offset 10");
  EXPECT_EQ(headerError("{'descr' '<f4'}"),
            "npy: header: expected ':' after key 'descr', found ''' at "
            "offset 19");
  EXPECT_EQ(headerError("{'descr': '<f4' 'shape': ()}"),
            "npy: header: expected ',' or '}' in the header dict, found ''' "
            "at offset 26");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False}"),
            "npy: header: missing key 'shape' in the header dict at offset "
            "10");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(), 'extra': 1}"),
            "npy: header: unexpected key 'extra' at offset 64");
  EXPECT_EQ(headerError("{'descr': '<f4', 'descr': '<f4', 'fortran_order': "
                        "False, 'shape': ()}"),
            "npy: header: duplicate key 'descr' at offset 27");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}"),
            "npy: header: expected True or False, found '0' at offset 44");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "[2]}"),
            "npy: header: 'shape' must be a tuple, found '[' at offset 60");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(2)}"),
            "npy: header: 'shape' must be a tuple, found (2) at offset 60");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(2 3)}"),
            "npy: header: expected ',' or ')' in 'shape', found '3' at offset "
            "63");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(2,)} x"),
            "npy: header: unexpected 'x' after the header dict at offset 66");
  EXPECT_EQ(headerError("{'descr': '<f4"),
            "npy: header: unterminated string starting at offset 20");
  EXPECT_EQ(headerError("{'descr': [('a', '<f4')], 'fortran_order': False, "
                        "'shape': ()}"),
            "npy: header: structured dtypes are not supported at offset 20");
  EXPECT_EQ(headerError(""), "npy: header: expected '{' to start the header "
                             "dict, found end of header at offset 10");
}

TEST(NpyTest, FortranOrder) {
  ErrorOr<Tensor> t = readNpy(dataPath("f32_fortran.npy"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error(), dataPath("f32_fortran.npy") +
                           ": fortran_order: True is not supported (save a "
                           "C-ordered array, e.g. np.ascontiguousarray(arr)) "
                           "at offset 10");
}

TEST(NpyTest, BigEndian) {
  ErrorOr<Tensor> t = readNpy(dataPath("f32_bigendian.npy"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error(), dataPath("f32_bigendian.npy") +
                           ": big-endian dtype '>f4' is not supported; "
                           "convert it with arr.astype('<f4') at offset 20");
}

TEST(NpyTest, UnsupportedDType) {
  const std::string supported =
      " (supported: <f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1, |b1) at offset 20";
  EXPECT_EQ(headerError("{'descr': '<c8', 'fortran_order': False, 'shape': "
                        "()}"),
            "npy: unsupported dtype '<c8'" + supported);
  EXPECT_EQ(headerError("{'descr': '<u2', 'fortran_order': False, 'shape': "
                        "()}"),
            "npy: unsupported dtype '<u2'" + supported);
  EXPECT_EQ(headerError("{'descr': '|O', 'fortran_order': False, 'shape': "
                        "()}"),
            "npy: unsupported dtype '|O'" + supported);
  // '|' means "byte order not applicable", which is wrong for a 4-byte type.
  EXPECT_EQ(headerError("{'descr': '|f4', 'fortran_order': False, 'shape': "
                        "()}"),
            "npy: unsupported dtype '|f4'" + supported);
}

TEST(NpyTest, TruncatedData) {
  ErrorOr<std::vector<uint8_t>> bytes =
      serializeNpy(Tensor::f32({4, 3, 2}, std::vector<float>(24)));
  ASSERT_TRUE(bytes.ok());
  bytes->resize(128 + 40);
  EXPECT_EQ(parseError(*bytes),
            "npy: truncated data: expected 96 bytes at offset 128 for shape "
            "[4, 3, 2] of f32, file has 40");
}

TEST(NpyTest, TrailingBytes) {
  ErrorOr<std::vector<uint8_t>> bytes = serializeNpy(Tensor::i64({2}, {1, 2}));
  ASSERT_TRUE(bytes.ok());
  bytes->insert(bytes->end(), {0, 0, 0, 0});
  EXPECT_EQ(parseError(*bytes),
            "npy: trailing data: expected 16 bytes at offset 128 for shape "
            "[2] of i64, file has 20 (4 extra bytes at offset 144)");
}

TEST(NpyTest, ShapeOverflow) {
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(4611686018427387904, 4)}"),
            "npy: shape [4611686018427387904, 4] of f32 is too large: its "
            "byte size overflows int64 at offset 60");
  // Fits in int64 elements, but not in bytes.
  EXPECT_EQ(headerError("{'descr': '<f8', 'fortran_order': False, 'shape': "
                        "(2305843009213693952,)}"),
            "npy: shape [2305843009213693952] of f64 is too large: its byte "
            "size overflows int64 at offset 60");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(99999999999999999999,)}"),
            "npy: header: dimension in 'shape' does not fit in int64 at "
            "offset 61");
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(2, -3)}"),
            "npy: header: negative dimension -3 in 'shape' at offset 64");
  // A large but representable shape is caught by the size check, before
  // anything is allocated.
  EXPECT_EQ(headerError("{'descr': '<f4', 'fortran_order': False, 'shape': "
                        "(1000000000, 1000)}"),
            "npy: truncated data: expected 4000000000000 bytes at offset 79 "
            "for shape [1000000000, 1000] of f32, file has 0");
}

TEST(NpyTest, PathErrors) {
  ScratchDir dir;
  ErrorOr<Tensor> t = readNpy(dir.path("missing.npy"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error(), dir.path("missing.npy") +
                           ": cannot open: No such file or "
                           "directory");

  std::string path = dir.path("bad.npy");
  writeBytes(path, toBytes("hello"));
  ErrorOr<Tensor> bad = readNpy(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), path + ": bad magic at offset 0: not a .npy file "
                                "(expected \\x93NUMPY)");
}

TEST(NpyTest, WriteRejectsBadTensors) {
  ScratchDir dir;
  Status s = writeNpy(dir.path("x.npy"), Tensor::zeros(DType::BF16, {2}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), dir.path("x.npy") +
                           ": cannot write a bf16 tensor: NumPy has no "
                           "bfloat16 dtype (convert it to f32 first)");

  Status mismatch =
      writeNpy(dir.path("y.npy"), Tensor{DType::F32, {3}, {0, 0, 0, 0}});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error(), dir.path("y.npy") +
                                  ": cannot write tensor of shape [3] and "
                                  "dtype f32: it holds 4 bytes, which does not "
                                  "match its shape");
  EXPECT_TRUE(dir.list().empty());
}

TEST(NpyTest, FailedWriteLeavesNoFile) {
  ScratchDir dir;
  std::string missingDir = dir.path("no-such-dir");
  Status s = writeNpy(missingDir + "/x.npy", Tensor::f32({1}, {1.0f}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().rfind(missingDir +
                                "/x.npy: cannot create temporary "
                                "file '" +
                                missingDir + "/x.npy.tmp-",
                            0),
            0u)
      << s.error();
  EXPECT_NE(s.error().find("No such file or directory"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(missingDir));
  EXPECT_TRUE(dir.list().empty());

  // The rename fails when the destination is a directory: the temporary
  // file is removed and the directory is untouched.
  std::filesystem::create_directory(dir.path("taken"));
  Status r = writeNpy(dir.path("taken"), Tensor::f32({1}, {1.0f}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("cannot rename temporary file"), std::string::npos)
      << r.error();
  EXPECT_EQ(dir.list(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(std::filesystem::is_directory(dir.path("taken")));
}

TEST(NpyTest, WriteReplacesExistingFile) {
  ScratchDir dir;
  std::string path = dir.path("x.npy");
  writeBytes(path, toBytes("old contents"));
  ASSERT_TRUE(writeNpy(path, Tensor::i64({1}, {9})).ok());
  ErrorOr<Tensor> t = readNpy(path);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->i64Data()[0], 9);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"x.npy"});
}

} // namespace
