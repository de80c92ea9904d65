//===- Npy.h - NumPy .npy reader and writer ---------------------*- C++ -*-===//
//
// Reads .npy format versions 1.0, 2.0 and 3.0 (little-endian, C order) and
// writes 1.0 (2.0 when the header does not fit), as numpy.save does. The
// reader treats its input as untrusted: every length, shape and offset is
// checked, and errors say what is wrong and at which byte offset.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_NPY_H
#define LOOM_RUNTIME_NPY_H

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace loom {

/// Parses an in-memory .npy file. Errors start with "npy: ".
ErrorOr<Tensor> parseNpy(const uint8_t *data, size_t size);

/// Reads a .npy file. Errors start with "<path>: ".
ErrorOr<Tensor> readNpy(const std::string &path);

/// Serializes a tensor as .npy bytes. BF16 has no NumPy dtype and is an
/// error, as is a tensor whose data size does not match its shape.
ErrorOr<std::vector<uint8_t>> serializeNpy(const Tensor &tensor);

/// Writes a .npy file atomically (temporary file + rename; nothing is left
/// behind on failure). Errors start with "<path>: ".
Status writeNpy(const std::string &path, const Tensor &tensor);

} // namespace loom

#endif // LOOM_RUNTIME_NPY_H
