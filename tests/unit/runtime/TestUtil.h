//===- TestUtil.h - Helpers shared by the runtime I/O tests -----*- C++ -*-===//
//
// Fixture paths, a self-cleaning scratch directory and byte helpers.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TESTS_UNIT_RUNTIME_TESTUTIL_H
#define LOOM_TESTS_UNIT_RUNTIME_TESTUTIL_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace loom::test {

/// Path of a committed fixture under tests/unit/runtime/data.
inline std::string dataPath(const std::string &name) {
  return std::string(LOOM_RUNTIME_TEST_DATA) + "/" + name;
}

inline std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void writeBytes(const std::string &path,
                       const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> toBytes(const std::string &s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

/// A fresh directory, removed with its contents when the object dies.
class ScratchDir {
public:
  ScratchDir() {
    std::random_device rd;
    dir = std::filesystem::path(::testing::TempDir()) /
          ("loom-runtime-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(dir);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string path(const std::string &name) const {
    return (dir / name).string();
  }
  /// Names of the entries in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (const auto &entry : std::filesystem::directory_iterator(dir))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  std::filesystem::path dir;
};

} // namespace loom::test

#endif // LOOM_TESTS_UNIT_RUNTIME_TESTUTIL_H
