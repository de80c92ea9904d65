//===- MemoryTest.cpp - the heap of compiled code ---------------------===//
#include "runtime/Memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

using namespace loom;

namespace {

// A freed large block comes back for the next allocation of its size (the
// pages are already mapped), and leaves the cache when it does.
TEST(MemoryTest, LargeBlocksAreReusedForTheSameSize) {
  size_t before = cachedBytes();
  void *a = _mlir_memref_to_llvm_alloc((size_t(64) << 10) * 3);
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, (size_t(64) << 10) * 3);
  _mlir_memref_to_llvm_free(a);
  EXPECT_EQ(cachedBytes(), before + (size_t(64) << 10) * 3);
  void *other = _mlir_memref_to_llvm_alloc((size_t(64) << 10) * 2);
  void *b = _mlir_memref_to_llvm_alloc((size_t(64) << 10) * 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(other, b);
  EXPECT_EQ(cachedBytes(), before);
  _mlir_memref_to_llvm_free(b);
  _mlir_memref_to_llvm_free(other);
}

// Small blocks are cached too (a streaming step allocates nothing from
// malloc after warm-up); blocks are 16-byte aligned.
TEST(MemoryTest, SmallBlocksAreReused) {
  size_t before = cachedBytes();
  void *p = _mlir_memref_to_llvm_alloc(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
  _mlir_memref_to_llvm_free(p);
  EXPECT_EQ(cachedBytes(), before + 100);
  void *q = _mlir_memref_to_llvm_alloc(100);
  EXPECT_EQ(q, p);
  EXPECT_EQ(cachedBytes(), before);
  _mlir_memref_to_llvm_free(q);
  _mlir_memref_to_llvm_free(nullptr);
}

// At most kCacheBlocksMax blocks are kept, whatever their size.
TEST(MemoryTest, CacheKeepsBoundedBlockCount) {
  std::thread([] {
    std::vector<void *> blocks(kCacheBlocksMax + 10);
    for (void *&p : blocks)
      p = _mlir_memref_to_llvm_alloc(32);
    for (void *p : blocks)
      _mlir_memref_to_llvm_free(p);
    EXPECT_EQ(cachedBytes(), kCacheBlocksMax * 32);
  }).join();
}

// A thread keeps at most kCacheBytesMax; beyond that, freed blocks are
// released.
TEST(MemoryTest, CacheIsBounded) {
  std::thread([] {
    const size_t size = kCacheBytesMax / 4 + 1;
    void *blocks[5];
    for (void *&p : blocks)
      p = _mlir_memref_to_llvm_alloc(size);
    for (void *p : blocks)
      _mlir_memref_to_llvm_free(p);
    EXPECT_EQ(cachedBytes(), 3 * size);
  }).join();
}

} // namespace

namespace {

// Long-lived buffers of 2 MiB or more are 2 MiB-aligned (huge-page ready);
// smaller ones are plain; both are usable and zeroed by std::vector.
TEST(MemoryTest, LongLivedBuffersAreHugePageAligned) {
  std::vector<float, LongLivedAllocator<float>> big(3 << 20); // 12 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % (2 << 20), 0u);
  EXPECT_EQ(big.front(), 0.0f);
  EXPECT_EQ(big.back(), 0.0f);
  big.back() = 1.0f;
  std::vector<float, LongLivedAllocator<float>> small(10);
  EXPECT_NE(small.data(), nullptr);
  EXPECT_EQ(small[9], 0.0f);
}

} // namespace
