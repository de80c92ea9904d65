//===- Limits.h - Resource limits on what users feed loom -------*- C++ -*-===//
//
// loom checks sizes that come from user input before it allocates, so that
// an absurd size is an error naming it rather than an out-of-memory kill:
//
// - one memory limit for everything a model needs at once: the files read
//   whole (weights, inputs, corpora), a model's parameters, and the
//   tensors of one run at the given input sizes. By default it is the
//   machine's physical memory; LOOM_MAX_MEMORY=SIZE (or the CLI's
//   --max-memory SIZE) sets it, where SIZE is bytes with an optional K, M,
//   G or T suffix (powers of 1024), or 0 for no limit;
// - fixed limits on header sizes, source lines and files, documented in
//   docs/robustness.md with the reasons for their values.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_LIMITS_H
#define LOOM_RUNTIME_LIMITS_H

#include "runtime/Status.h"

#include <cstdint>
#include <string>

namespace loom {

/// The largest .npy header loom reads: NumPy's own default
/// (`max_header_size` of numpy.lib.format, NumPy >= 1.24).
inline constexpr uint64_t kMaxNpyHeaderBytes = 10000;
/// The largest safetensors header: the reference implementation's limit
/// (safetensors' MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxSafeTensorsHeaderBytes = 100000000;

/// The memory limit in bytes (UINT64_MAX: none). Reads LOOM_MAX_MEMORY the
/// first time unless setMemoryLimit was called.
uint64_t memoryLimit();
/// Where the limit comes from, for messages: "the machine's memory",
/// "LOOM_MAX_MEMORY", "--max-memory".
std::string memoryLimitSource();
/// Sets the limit (bytes, UINT64_MAX for none) and what set it.
void setMemoryLimit(uint64_t bytes, const std::string &source);

/// Parses "512M", "16G", "1073741824", "0" (no limit: UINT64_MAX).
ErrorOr<uint64_t> parseByteSize(const std::string &text);

/// "1.5 GiB", "512 B".
std::string formatBytes(uint64_t bytes);

/// An error if `bytes` is over the limit: "<what> needs <X>, over loom's
/// memory limit of <Y> (<source>); raise it with --max-memory SIZE or
/// LOOM_MAX_MEMORY=SIZE (0: no limit)".
Status checkMemory(uint64_t bytes, const std::string &what);

/// a * b and a + b, saturating at UINT64_MAX.
uint64_t saturatingMul(uint64_t a, uint64_t b);
uint64_t saturatingAdd(uint64_t a, uint64_t b);

} // namespace loom

#endif // LOOM_RUNTIME_LIMITS_H
