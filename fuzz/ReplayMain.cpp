//===- ReplayMain.cpp - run a fuzz target on files, without libFuzzer ---===//
//
// Links with a fuzz target's LLVMFuzzerTestOneInput into an ordinary
// executable that runs it once on every file given (directories: every
// file in them). The normal build's ctest replays the seed corpora and the
// regression inputs of every crash fuzzing found this way; the libFuzzer
// build (scripts/fuzz.sh) mutates them.
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool runFile(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

int main(int argc, char **argv) {
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto &e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) {
          if (!runFile(e.path()))
            return 1;
          ++count;
        }
    } else {
      if (!runFile(p))
        return 1;
      ++count;
    }
  }
  std::printf("%zu inputs ran without a crash\n", count);
  return 0;
}
