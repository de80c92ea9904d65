//===- Memory.cpp - the heap of compiled code -------------------------===//
#include "runtime/Memory.h"

#include <cstdlib>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace {

/// A header before every block: its usable size. 16 bytes keep malloc's
/// alignment for the block itself.
struct alignas(16) Header {
  uint64_t size;
};

struct Cache {
  Cache() { blocks.reserve(loom::kCacheBlocksMax); }
  std::vector<Header *> blocks; // free, most recently freed last
  std::size_t bytes = 0;
  ~Cache() {
    for (Header *h : blocks)
      std::free(h);
  }
};

Cache &cache() {
  thread_local Cache c;
  return c;
}

} // namespace

extern "C" void *_mlir_memref_to_llvm_alloc(uint64_t size) {
  Cache &c = cache();
  for (size_t k = c.blocks.size(); k-- > 0;)
    if (c.blocks[k]->size == size) {
      Header *h = c.blocks[k];
      c.blocks.erase(c.blocks.begin() + k);
      c.bytes -= size;
      return h + 1;
    }
  auto *h = static_cast<Header *>(std::malloc(sizeof(Header) + size));
  if (!h)
    return nullptr;
  h->size = size;
  return h + 1;
}

extern "C" void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  Header *h = static_cast<Header *>(ptr) - 1;
  Cache &c = cache();
  if (c.bytes + h->size <= loom::kCacheBytesMax &&
      c.blocks.size() < loom::kCacheBlocksMax) {
    c.blocks.push_back(h);
    c.bytes += h->size;
    return;
  }
  std::free(h);
}

std::size_t loom::cachedBytes() { return cache().bytes; }

void *loom::allocateLongLived(std::size_t bytes) {
  constexpr std::size_t kHuge = std::size_t(2) << 20;
  if (bytes < kHuge)
    return std::malloc(bytes ? bytes : 1);
  std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void *p = std::aligned_alloc(kHuge, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p)
    madvise(p, rounded, MADV_HUGEPAGE); // advice only: failure is harmless
#endif
  return p;
}

void loom::freeLongLived(void *ptr) { std::free(ptr); }
