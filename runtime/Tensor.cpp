//===- Tensor.cpp - Element types and the raw tensor container ------------===//
//
// DType properties, Tensor helpers and the float/int conversions.
//
//===----------------------------------------------------------------------===//

#include "runtime/Tensor.h"

#include <cstring>

using namespace loom;

const char *loom::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F64:
    return "f64";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::I64:
    return "i64";
  case DType::I32:
    return "i32";
  case DType::I16:
    return "i16";
  case DType::I8:
    return "i8";
  case DType::U8:
    return "u8";
  case DType::Bool:
    return "bool";
  }
  return "?";
}

size_t loom::dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
  case DType::I16:
    return 2;
  case DType::I8:
  case DType::U8:
  case DType::Bool:
    return 1;
  }
  return 1;
}

std::string loom::shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool loom::checkedNumElements(const std::vector<int64_t> &shape,
                              size_t itemSize, int64_t &numElements,
                              int64_t &numBytes) {
  int64_t nonZeroProduct = static_cast<int64_t>(itemSize);
  bool empty = false;
  for (int64_t dim : shape) {
    if (dim < 0)
      return false;
    if (dim == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(nonZeroProduct, dim, &nonZeroProduct))
      return false;
  }
  if (itemSize == 0)
    return false;
  numBytes = empty ? 0 : nonZeroProduct;
  numElements = numBytes / static_cast<int64_t>(itemSize);
  return true;
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t dim : shape)
    n *= dim;
  return n;
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t{dtype, std::move(shape), {}};
  t.data.assign(static_cast<size_t>(t.numElements()) * dtypeSize(dtype), 0);
  return t;
}

Tensor Tensor::f32(std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t = zeros(DType::F32, std::move(shape));
  assert(values.size() == static_cast<size_t>(t.numElements()) &&
         "value count does not match the shape");
  if (!values.empty())
    std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

Tensor Tensor::i64(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t = zeros(DType::I64, std::move(shape));
  assert(values.size() == static_cast<size_t>(t.numElements()) &&
         "value count does not match the shape");
  if (!values.empty())
    std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// The element vector's storage comes from operator new, which aligns it for
// any fundamental type, so these casts yield properly aligned pointers.
float *Tensor::f32Data() {
  assert(dtype == DType::F32 && "not an f32 tensor");
  return reinterpret_cast<float *>(data.data());
}
const float *Tensor::f32Data() const {
  assert(dtype == DType::F32 && "not an f32 tensor");
  return reinterpret_cast<const float *>(data.data());
}
int64_t *Tensor::i64Data() {
  assert(dtype == DType::I64 && "not an i64 tensor");
  return reinterpret_cast<int64_t *>(data.data());
}
const int64_t *Tensor::i64Data() const {
  assert(dtype == DType::I64 && "not an i64 tensor");
  return reinterpret_cast<const int64_t *>(data.data());
}

static float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float loom::halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) // Infinity or NaN; keep the payload.
    return bitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return bitsToFloat(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
  if (mantissa == 0)
    return bitsToFloat(sign);
  // A half subnormal is a normal float: shift the leading one into the
  // implicit bit position, lowering the exponent once per shift.
  uint32_t floatExponent = 127 - 15 + 1;
  while (!(mantissa & 0x400)) {
    mantissa <<= 1;
    --floatExponent;
  }
  mantissa &= 0x3ff;
  return bitsToFloat(sign | (floatExponent << 23) | (mantissa << 13));
}

float loom::bfloat16ToFloat(uint16_t bits) {
  // bfloat16 is the top half of a binary32.
  return bitsToFloat(static_cast<uint32_t>(bits) << 16);
}

static uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

static bool hasConsistentSize(const Tensor &t) {
  int64_t n, bytes;
  return checkedNumElements(t.shape, dtypeSize(t.dtype), n, bytes) &&
         static_cast<uint64_t>(bytes) == t.data.size();
}

static Error sizeMismatch(const Tensor &t) {
  return Error{"tensor of shape " + t.shapeString() + " and dtype " +
               dtypeName(t.dtype) + " holds " + std::to_string(t.data.size()) +
               " bytes, which does not match its shape"};
}

ErrorOr<std::vector<float>> loom::toF32Values(const Tensor &t) {
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    return Error{std::string("expected a float tensor (f32, f16 or bf16), "
                             "found ") +
                 dtypeName(t.dtype)};
  if (!hasConsistentSize(t))
    return sizeMismatch(t);
  size_t n = static_cast<size_t>(t.numElements());
  std::vector<float> values(n);
  const uint8_t *p = t.data.data();
  if (t.dtype == DType::F32) {
    if (n)
      std::memcpy(values.data(), p, n * sizeof(float));
  } else if (t.dtype == DType::F16) {
    for (size_t i = 0; i < n; ++i)
      values[i] = halfToFloat(loadU16(p + 2 * i));
  } else {
    for (size_t i = 0; i < n; ++i)
      values[i] = bfloat16ToFloat(loadU16(p + 2 * i));
  }
  return values;
}

ErrorOr<std::vector<int64_t>> loom::toI64Values(const Tensor &t) {
  if (t.dtype != DType::I64 && t.dtype != DType::I32)
    return Error{
        std::string("expected an integer tensor (i64 or i32), found ") +
        dtypeName(t.dtype)};
  if (!hasConsistentSize(t))
    return sizeMismatch(t);
  size_t n = static_cast<size_t>(t.numElements());
  std::vector<int64_t> values(n);
  if (t.dtype == DType::I64) {
    if (n)
      std::memcpy(values.data(), t.data.data(), n * sizeof(int64_t));
  } else {
    for (size_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, t.data.data() + 4 * i, sizeof v);
      values[i] = v;
    }
  }
  return values;
}
