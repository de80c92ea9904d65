//===- compile-latency.cpp - cold and cached compile times --------------===//
//
// Times loom::Module::compileFile through the embedding API: cold (an empty
// compile cache, so every pass and LLVM run) and cached (the objects read
// back from the cache of the cold run), each the median of several runs in
// this process. Prints one JSON line (bench-peers' raw format, seconds).
//
//   loom-compile-latency MODEL.loom --cid C7 [--train] [--reps N]
//       [--cache-dir DIR]  (default: a fresh directory under /tmp)
//
//===----------------------------------------------------------------------===//

#include "loom/loom.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: loom-compile-latency MODEL.loom --cid ID "
                         "[--train] [--reps N] [--cache-dir DIR]\n");
    return 1;
  }
  std::string model = argv[1], cid = "model";
  std::string dir = std::filesystem::temp_directory_path() /
                    ("loom-compile-latency-" + std::to_string(getpid()));
  bool train = false;
  int reps = 3;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--train")
      train = true;
    else if (a == "--cid" && i + 1 < argc)
      cid = argv[++i];
    else if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--cache-dir" && i + 1 < argc)
      dir = argv[++i];
    else {
      std::fprintf(stderr, "unknown argument '%s'\n", a.c_str());
      return 1;
    }
  }
  loom::CompileOptions options;
  options.training = train;
  // The settings bench/run.sh's C7 step uses (SGD with clipping).
  if (train)
    options.trainSettings = {{"optimizer", "sgd"}, {"clip", "0.25"}};
  auto timeOnce = [&](bool cached, bool &hit) -> double {
    options.cacheDir = dir;
    if (!cached)
      std::filesystem::remove_all(dir);
    auto start = std::chrono::steady_clock::now();
    auto m = loom::Module::compileFile(model, options);
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!m) {
      std::fprintf(stderr, "%s\n", m.message().c_str());
      std::exit(1);
    }
    hit = (*m)->fromCache();
    return s;
  };
  std::vector<double> cold, warm;
  bool hit = false;
  for (int r = 0; r < reps; ++r) {
    cold.push_back(timeOnce(false, hit));
    if (hit) {
      std::fprintf(stderr, "a cold compile came from the cache\n");
      return 1;
    }
    for (int k = 0; k < 3; ++k) {
      warm.push_back(timeOnce(true, hit));
      if (!hit) {
        std::fprintf(stderr, "a cached compile did not hit the cache\n");
        return 1;
      }
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("{\"cid\": \"%s\", \"peer\": \"loom-compile\", \"threads\": 1, "
              "\"cold_s\": %.6f, \"cached_s\": %.6f, \"cold_runs\": %zu, "
              "\"cached_runs\": %zu, \"training\": %s}\n",
              cid.c_str(), median(cold), median(warm), cold.size(), warm.size(),
              train ? "true" : "false");
  return 0;
}
