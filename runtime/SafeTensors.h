//===- SafeTensors.h - safetensors reader and writer ------------*- C++ -*-===//
//
// Reads and writes the safetensors format used for weights and checkpoints:
// an 8-byte little-endian header length N, N bytes of JSON mapping tensor
// names to {"dtype", "shape", "data_offsets"} (plus an optional
// "__metadata__" object of strings), then the tensor data. The reader
// validates the whole header before touching the data; errors name the
// tensor and the byte offset of the problem.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_SAFETENSORS_H
#define LOOM_RUNTIME_SAFETENSORS_H

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loom {

struct SafeTensorsFile {
  /// Tensors in header order.
  std::vector<std::pair<std::string, Tensor>> tensors;
  /// The "__metadata__" entries (empty if absent).
  std::map<std::string, std::string> metadata;

  /// The tensor with this name, or null.
  const Tensor *find(const std::string &name) const;
};

/// The safetensors spelling of a dtype: "F32", "BF16", "BOOL", ...
const char *safetensorsDTypeName(DType dtype);
/// The dtype spelled name in a safetensors header, if loom supports it.
std::optional<DType> parseSafeTensorsDType(const std::string &name);

/// Parses an in-memory safetensors file. Errors start with "safetensors: ".
ErrorOr<SafeTensorsFile> parseSafeTensors(const uint8_t *data, size_t size);

/// Reads a safetensors file. Errors start with "<path>: ".
ErrorOr<SafeTensorsFile> readSafeTensors(const std::string &path);

/// Serializes tensors and metadata to safetensors bytes, laid out as
/// writeSafeTensors describes. Errors start with "safetensors: ".
ErrorOr<std::vector<uint8_t>>
serializeSafeTensors(const std::vector<std::pair<std::string, Tensor>> &tensors,
                     const std::map<std::string, std::string> &metadata = {});

/// Writes a safetensors file atomically (temporary file + rename; nothing is
/// left behind on failure), laid out as the reference implementation does:
/// tensors ordered by decreasing alignment, then by name, stored back to
/// back in that order, and the header padded with spaces to a multiple of 8
/// bytes so every tensor's data is aligned to its element size. Empty
/// metadata is omitted. Names must be unique and not "__metadata__".
/// Errors start with "<path>: ".
Status
writeSafeTensors(const std::string &path,
                 const std::vector<std::pair<std::string, Tensor>> &tensors,
                 const std::map<std::string, std::string> &metadata = {});

} // namespace loom

#endif // LOOM_RUNTIME_SAFETENSORS_H
