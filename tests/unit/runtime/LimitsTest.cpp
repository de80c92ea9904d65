//===- LimitsTest.cpp - Tests of the resource limits ----------------------===//

#include "runtime/Limits.h"

#include "TestUtil.h"
#include "runtime/FileIO.h"
#include "runtime/Npy.h"

#include <gtest/gtest.h>

using namespace loom;
using loom::test::ScratchDir;

namespace {

/// Sets the limit for one test and restores the previous one.
class ScopedLimit {
public:
  ScopedLimit(uint64_t bytes, const std::string &source)
      : saved(memoryLimit()), savedSource(memoryLimitSource()) {
    setMemoryLimit(bytes, source);
  }
  ~ScopedLimit() { setMemoryLimit(saved, savedSource); }

private:
  uint64_t saved;
  std::string savedSource;
};

TEST(LimitsTest, ParsesSizes) {
  EXPECT_EQ(*parseByteSize("1536"), 1536u);
  EXPECT_EQ(*parseByteSize("4K"), 4096u);
  EXPECT_EQ(*parseByteSize("4k"), 4096u);
  EXPECT_EQ(*parseByteSize("512M"), 512u << 20);
  EXPECT_EQ(*parseByteSize("16G"), uint64_t(16) << 30);
  EXPECT_EQ(*parseByteSize("16GB"), uint64_t(16) << 30);
  EXPECT_EQ(*parseByteSize("16GiB"), uint64_t(16) << 30);
  EXPECT_EQ(*parseByteSize("2T"), uint64_t(2) << 40);
  EXPECT_EQ(*parseByteSize("0"), UINT64_MAX);
  for (const char *bad : {"", "G", "-1", "1.5G", "12Q", "1G2", " 1",
                          "99999999999999999999", "16777216T"}) {
    auto v = parseByteSize(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.error(), std::string("expected a size in bytes with an "
                                     "optional K, M, G or T suffix (0: no "
                                     "limit), got '") +
                             bad + "'");
  }
}

TEST(LimitsTest, FormatsBytes) {
  EXPECT_EQ(formatBytes(0), "0 B");
  EXPECT_EQ(formatBytes(1023), "1023 B");
  EXPECT_EQ(formatBytes(1024), "1.0 KiB");
  EXPECT_EQ(formatBytes(1536), "1.5 KiB");
  EXPECT_EQ(formatBytes(uint64_t(5) << 30), "5.0 GiB");
  EXPECT_EQ(formatBytes(UINT64_MAX), "16.0 EiB");
}

TEST(LimitsTest, SaturatingArithmetic) {
  EXPECT_EQ(saturatingMul(uint64_t(1) << 40, uint64_t(1) << 40), UINT64_MAX);
  EXPECT_EQ(saturatingMul(3, 4), 12u);
  EXPECT_EQ(saturatingAdd(UINT64_MAX - 1, 5), UINT64_MAX);
  EXPECT_EQ(saturatingAdd(2, 5), 7u);
}

TEST(LimitsTest, ChecksAgainstTheLimit) {
  // The default is the machine's memory, which is not nothing.
  EXPECT_GT(memoryLimit(), uint64_t(1) << 20);
  ScopedLimit limit(1000, "--max-memory");
  EXPECT_TRUE(checkMemory(1000, "x").ok());
  Status st = checkMemory(1001, "holding it");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "holding it needs 1001 B, over loom's memory limit of "
                        "1000 B (--max-memory); raise it with --max-memory "
                        "SIZE or LOOM_MAX_MEMORY=SIZE (0: no limit)");
  st = checkMemory(UINT64_MAX, "it");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().find("it needs more than 16 EiB"), std::string::npos);
  setMemoryLimit(UINT64_MAX, "LOOM_MAX_MEMORY");
  EXPECT_TRUE(checkMemory(UINT64_MAX - 1, "x").ok());
}

TEST(LimitsTest, FilesOverTheLimitAreNotRead) {
  ScratchDir dir;
  std::string path = dir.path("t.npy");
  ASSERT_TRUE(writeNpy(path, Tensor::zeros(DType::F32, {1000})).ok());
  {
    ScopedLimit limit(2048, "LOOM_MAX_MEMORY");
    auto bytes = readFileBytes(path);
    ASSERT_FALSE(bytes.ok());
    EXPECT_EQ(bytes.error(),
              path + ": reading the whole file needs 4.0 KiB, over loom's "
                     "memory limit of 2.0 KiB (LOOM_MAX_MEMORY); raise it "
                     "with --max-memory SIZE or LOOM_MAX_MEMORY=SIZE (0: no "
                     "limit)");
    auto t = readNpy(path);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error(), bytes.error());
  }
  EXPECT_TRUE(readNpy(path).ok());
}

} // namespace
