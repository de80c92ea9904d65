//===- Memory.h - the heap of compiled code ---------------------*- C++ -*-===//
//
// Compiled code allocates its intermediate buffers through
// `_mlir_memref_to_llvm_alloc` / `_mlir_memref_to_llvm_free`
// (finalize-memref-to-llvm's generic functions), which loom implements here:
// malloc and free, except that freed blocks are kept in a per-thread cache
// (at most 256 MiB and 1024 blocks per thread) and handed out again for the
// same size. A training or inference step allocates the same buffers on
// every call: from glibc each large one would be a fresh mmap whose pages
// fault in and are zeroed on every step, and a streaming session's batch-1
// steps would call malloc every time (the embedding API promises none after
// warm-up).
//
//===----------------------------------------------------------------------===//
#ifndef LOOM_RUNTIME_MEMORY_H
#define LOOM_RUNTIME_MEMORY_H

#include <cstddef>
#include <cstdint>
#include <new>

extern "C" {
void *_mlir_memref_to_llvm_alloc(uint64_t size);
void _mlir_memref_to_llvm_free(void *ptr);
}

namespace loom {

/// Bytes a thread's cache keeps at most.
constexpr std::size_t kCacheBytesMax = std::size_t(256) << 20;
/// Blocks a thread's cache keeps at most.
constexpr std::size_t kCacheBlocksMax = 1024;

/// Bytes held by the calling thread's cache (for tests).
std::size_t cachedBytes();

/// Storage for long-lived large buffers (packed weights): blocks of 2 MiB or
/// more are 2 MiB-aligned and advised to use transparent huge pages, so
/// that streaming a 16 MiB weight matrix every step costs 8 TLB entries
/// instead of 4096.
void *allocateLongLived(std::size_t bytes);
void freeLongLived(void *ptr);

/// A std::allocator that uses allocateLongLived.
template <typename T> struct LongLivedAllocator {
  using value_type = T;
  LongLivedAllocator() = default;
  template <typename U> LongLivedAllocator(const LongLivedAllocator<U> &) {}
  T *allocate(std::size_t n) {
    void *p = allocateLongLived(n * sizeof(T));
    if (!p)
      throw std::bad_alloc();
    return static_cast<T *>(p);
  }
  void deallocate(T *p, std::size_t) { freeLongLived(p); }
  bool operator==(const LongLivedAllocator &) const { return true; }
  bool operator!=(const LongLivedAllocator &) const { return false; }
};

} // namespace loom

#endif
