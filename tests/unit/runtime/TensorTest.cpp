//===- TensorTest.cpp - Tests of Tensor, DType and conversions ------------===//

#include "runtime/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace loom;

namespace {

Tensor fromU16(DType dtype, const std::vector<uint16_t> &bits) {
  Tensor t{dtype, {static_cast<int64_t>(bits.size())}, {}};
  for (uint16_t b : bits) {
    t.data.push_back(static_cast<uint8_t>(b & 0xff));
    t.data.push_back(static_cast<uint8_t>(b >> 8));
  }
  return t;
}

uint32_t floatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

TEST(TensorTest, DTypeNamesAndSizes) {
  EXPECT_STREQ(dtypeName(DType::F32), "f32");
  EXPECT_STREQ(dtypeName(DType::BF16), "bf16");
  EXPECT_STREQ(dtypeName(DType::I64), "i64");
  EXPECT_STREQ(dtypeName(DType::Bool), "bool");
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
  EXPECT_EQ(dtypeSize(DType::I32), 4u);
  EXPECT_EQ(dtypeSize(DType::Bool), 1u);
}

TEST(TensorTest, ShapeAndViews) {
  Tensor t = Tensor::f32({4, 3, 2}, std::vector<float>(24, 1.5f));
  EXPECT_EQ(t.numElements(), 24);
  EXPECT_EQ(t.shapeString(), "[4, 3, 2]");
  EXPECT_EQ(t.data.size(), 96u);
  EXPECT_EQ(t.f32Data()[23], 1.5f);
  t.f32Data()[0] = -2.0f;
  EXPECT_EQ(static_cast<const Tensor &>(t).f32Data()[0], -2.0f);

  Tensor s = Tensor::i64({}, {42});
  EXPECT_EQ(s.numElements(), 1);
  EXPECT_EQ(s.shapeString(), "[]");
  EXPECT_EQ(s.i64Data()[0], 42);

  Tensor e = Tensor::zeros(DType::F16, {0, 5});
  EXPECT_EQ(e.numElements(), 0);
  EXPECT_TRUE(e.data.empty());
}

TEST(TensorTest, CheckedNumElements) {
  int64_t n, bytes;
  ASSERT_TRUE(checkedNumElements({4, 8}, 4, n, bytes));
  EXPECT_EQ(n, 32);
  EXPECT_EQ(bytes, 128);
  ASSERT_TRUE(checkedNumElements({}, 8, n, bytes));
  EXPECT_EQ(n, 1);
  ASSERT_TRUE(checkedNumElements({3, 0}, 8, n, bytes));
  EXPECT_EQ(n, 0);
  EXPECT_EQ(bytes, 0);
  EXPECT_FALSE(checkedNumElements({-1}, 4, n, bytes));
  EXPECT_FALSE(checkedNumElements({int64_t(1) << 62, 2}, 1, n, bytes));
  // The element count fits but the byte size does not.
  EXPECT_FALSE(checkedNumElements({int64_t(1) << 61}, 8, n, bytes));
  // Even an empty tensor may not have dimensions whose product overflows.
  EXPECT_FALSE(
      checkedNumElements({0, int64_t(1) << 40, int64_t(1) << 40}, 1, n, bytes));
}

TEST(TensorTest, HalfToF32IsExact) {
  Tensor t =
      fromU16(DType::F16, {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400,
                           0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e00});
  ErrorOr<std::vector<float>> v = toF32Values(t);
  ASSERT_TRUE(v.ok()) << v.error();
  ASSERT_EQ(v->size(), 11u);
  EXPECT_EQ((*v)[0], 1.0f);
  EXPECT_EQ((*v)[1], -2.0f);
  EXPECT_EQ((*v)[2], 65504.0f);
  EXPECT_EQ((*v)[3], std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ((*v)[4], std::ldexp(1023.0f, -24)); // largest subnormal
  EXPECT_EQ((*v)[5], std::ldexp(1.0f, -14));    // smallest normal
  EXPECT_EQ((*v)[6], 0.333251953125f);
  EXPECT_EQ(floatBits((*v)[7]), 0x80000000u); // -0.0 keeps its sign
  EXPECT_EQ((*v)[8], std::numeric_limits<float>::infinity());
  EXPECT_EQ((*v)[9], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan((*v)[10]));
}

TEST(TensorTest, BFloat16ToF32IsExact) {
  Tensor t = fromU16(DType::BF16,
                     {0x3f80, 0xc040, 0x3ec0, 0x7f80, 0x0001, 0x7fc0, 0x8000});
  ErrorOr<std::vector<float>> v = toF32Values(t);
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ((*v)[0], 1.0f);
  EXPECT_EQ((*v)[1], -3.0f);
  EXPECT_EQ((*v)[2], 0.375f);
  EXPECT_EQ((*v)[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(floatBits((*v)[4]), 0x00010000u); // a float subnormal
  EXPECT_TRUE(std::isnan((*v)[5]));
  EXPECT_EQ(floatBits((*v)[6]), 0x80000000u);
}

TEST(TensorTest, F32ToF32Values) {
  ErrorOr<std::vector<float>> v = toF32Values(Tensor::f32({2}, {0.1f, -7.0f}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{0.1f, -7.0f}));
}

TEST(TensorTest, ToF32RejectsOtherDTypes) {
  ErrorOr<std::vector<float>> v = toF32Values(Tensor::i64({1}, {3}));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), "expected a float tensor (f32, f16 or bf16), found i64");
  EXPECT_FALSE(toF32Values(Tensor::zeros(DType::F64, {2})).ok());
}

TEST(TensorTest, ToF32RejectsInconsistentSize) {
  Tensor t{DType::F32, {2, 2}, std::vector<uint8_t>(12)};
  ErrorOr<std::vector<float>> v = toF32Values(t);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), "tensor of shape [2, 2] and dtype f32 holds 12 bytes, "
                       "which does not match its shape");
}

TEST(TensorTest, ToI64Values) {
  ErrorOr<std::vector<int64_t>> a = toI64Values(Tensor::i64({2}, {-5, 1}));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<int64_t>{-5, 1}));

  Tensor i32{DType::I32, {2}, {0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0}};
  ErrorOr<std::vector<int64_t>> b = toI64Values(i32);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<int64_t>{-1, 7}));

  ErrorOr<std::vector<int64_t>> c = toI64Values(Tensor::f32({1}, {1.0f}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "expected an integer tensor (i64 or i32), found f32");
}

TEST(StatusTest, ErrorOrAndStatus) {
  ErrorOr<std::string> good = std::string("x");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->size(), 1u);
  EXPECT_EQ(good.take(), "x");

  // An ErrorOr<std::string> can still carry an error unambiguously.
  ErrorOr<std::string> bad = Error{"boom"};
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error(), "boom");

  Status ok = Status::success();
  EXPECT_TRUE(ok.ok());
  Status failed = Error{"nope"};
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.error(), "nope");
}

} // namespace
