//===- FileIO.h - Whole-file reads and atomic writes ------------*- C++ -*-===//
//
// The file primitives under the npy and safetensors readers and writers.
// Writes go to a temporary file in the destination's directory and are
// renamed into place, so readers never see a torn file and a failed write
// leaves nothing behind.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_FILEIO_H
#define LOOM_RUNTIME_FILEIO_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

/// A borrowed run of bytes to write.
struct ByteRange {
  const uint8_t *data;
  size_t size;
};

/// Reads the whole file. Errors are prefixed with the path.
ErrorOr<std::vector<uint8_t>> readFileBytes(const std::string &path);

/// Writes the concatenation of chunks to path atomically (temporary file in
/// the same directory, flushed and synced, then renamed over path). On
/// failure the temporary file is removed and path is untouched. Errors are
/// prefixed with the path.
Status writeFileAtomic(const std::string &path,
                       const std::vector<ByteRange> &chunks);

} // namespace loom

#endif // LOOM_RUNTIME_FILEIO_H
