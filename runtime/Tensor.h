//===- Tensor.h - Element types and the raw tensor container ----*- C++ -*-===//
//
// DType names the element types loom reads and writes; Tensor is a plain
// owning container of little-endian, C-ordered element bytes, shared by the
// file readers (npy, safetensors), the reference interpreter and the runtime.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_TENSOR_H
#define LOOM_RUNTIME_TENSOR_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

enum class DType { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool };

/// Lower-case short name: "f32", "f64", "f16", "bf16", "i64", "i32", "i16",
/// "i8", "u8", "bool".
const char *dtypeName(DType dtype);

/// Size of one element in bytes (Bool is one byte, 0 or 1).
size_t dtypeSize(DType dtype);

/// Formats a shape as "[4, 3, 8]" ("[]" for a scalar).
std::string shapeString(const std::vector<int64_t> &shape);

/// A tensor's element type, shape and raw element bytes (little-endian, C
/// order). The container does not enforce that data.size() matches the shape;
/// the readers guarantee it for what they return, and the typed constructors
/// below for what they build.
struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  /// Product of the dimensions (1 for a scalar).
  int64_t numElements() const;
  std::string shapeString() const { return loom::shapeString(shape); }

  /// A zero-filled tensor.
  static Tensor zeros(DType dtype, std::vector<int64_t> shape);
  /// values.size() must equal the product of shape.
  static Tensor f32(std::vector<int64_t> shape, std::vector<float> values);
  static Tensor i64(std::vector<int64_t> shape, std::vector<int64_t> values);

  /// Typed views of the element bytes; the dtype must match. They assume a
  /// little-endian host, like the rest of loom.
  float *f32Data();
  const float *f32Data() const;
  int64_t *i64Data();
  const int64_t *i64Data() const;
};

/// The elements as floats. Accepts F32, F16 and BF16 (converted exactly);
/// any other dtype is an error naming it.
ErrorOr<std::vector<float>> toF32Values(const Tensor &tensor);

/// The elements as int64. Accepts I64 and I32; any other dtype is an error.
ErrorOr<std::vector<int64_t>> toI64Values(const Tensor &tensor);

/// Exact IEEE binary16 and bfloat16 to binary32 conversions (subnormals,
/// infinities and NaN payloads included).
float halfToFloat(uint16_t bits);
float bfloat16ToFloat(uint16_t bits);

/// Computes the element count and byte size (count * itemSize) of an
/// untrusted shape, as the readers do before allocating anything. Returns
/// false if a dimension is negative or if the product of the non-zero
/// dimensions times itemSize does not fit in int64; checking the non-zero
/// ones even for an empty tensor means stride computations on any accepted
/// shape cannot overflow either.
bool checkedNumElements(const std::vector<int64_t> &shape, size_t itemSize,
                        int64_t &numElements, int64_t &numBytes);

} // namespace loom

#endif // LOOM_RUNTIME_TENSOR_H
