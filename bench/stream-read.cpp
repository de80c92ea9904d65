//===- stream-read.cpp - the memory bound of a batch-1 step --------------===//
//
// `loom-stream-read --bytes N --passes T --bench-threads P --cid C1`: the
// time to read N bytes T times over, split into P contiguous parts read by P
// threads, with every thread finishing a pass before any starts the next,
// as a batch-1 time step streams its recurrent weights (N = the packed W_hh,
// T = the sequence length). The bytes live where packed weights do (2 MiB
// aligned, on transparent huge pages); each thread sums its part with
// several independent vector accumulators, and the threads meet at a
// spinning barrier, so the figure is a floor that no per-step kernel over
// the same bytes can beat. Prints one JSON line, as loom-bench does, with
// "peer": "stream-read".
//
//===----------------------------------------------------------------------===//

#include "runtime/Memory.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cl = llvm::cl;

static cl::opt<uint64_t> bytes("bytes", cl::desc("Bytes read per pass"),
                               cl::init(uint64_t(1) << 20));
static cl::opt<int> passes("passes", cl::desc("Passes per timed run (T)"),
                           cl::init(100));
static cl::opt<int> threads("bench-threads", cl::desc("Reading threads"),
                            cl::init(1));
static cl::opt<int> reps("reps", cl::desc("Timed runs"), cl::init(50));
static cl::opt<std::string> cid("cid", cl::desc("Configuration id"),
                                cl::init("?"));

#if defined(__x86_64__)
__attribute__((target("avx2"))) static float sumAvx2(const float *p, size_t n) {
  // Eight independent accumulators: loads, not add latency, limit it.
  __m256 a[8];
  for (__m256 &v : a)
    v = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; ++k)
      a[k] = _mm256_add_ps(a[k], _mm256_load_ps(p + i + 8 * k));
  for (int k = 1; k < 8; ++k)
    a[0] = _mm256_add_ps(a[0], a[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, a[0]);
  float r = 0;
  for (float v : lanes)
    r += v;
  for (; i < n; ++i)
    r += p[i];
  return r;
}
#endif

static float sum(const float *p, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2"))
    return sumAvx2(p, n);
#endif
  float a[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k)
      a[k] += p[i + k];
  float r = 0;
  for (float v : a)
    r += v;
  for (; i < n; ++i)
    r += p[i];
  return r;
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "streaming-read bound\n");
  int nThreads = std::max(threads.getValue(), 1);
  size_t n = std::max<uint64_t>(bytes / sizeof(float), 1);
  float *data = static_cast<float *>(loom::allocateLongLived(n * 4));
  if (!data) {
    llvm::errs() << "loom-stream-read: error: cannot allocate " << bytes
                 << " bytes\n";
    return 1;
  }
  for (size_t i = 0; i < n; ++i)
    data[i] = float(i % 7);
  // Parts of whole 64-byte lines.
  size_t perThread = (n / nThreads + 15) / 16 * 16;

  // A sense-reversing spin barrier; one timed run is `passes` passes.
  std::atomic<int> arrived{0};
  std::atomic<int> generation{0};
  auto barrier = [&]() {
    int gen = generation.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) == nThreads - 1) {
      arrived.store(0, std::memory_order_relaxed);
      generation.fetch_add(1, std::memory_order_acq_rel);
    } else {
      while (generation.load(std::memory_order_acquire) == gen)
        ;
    }
  };
  int runs = reps + 3; // 3 untimed
  std::vector<double> times;
  std::vector<float> sink(nThreads);
  auto work = [&](int t) {
    size_t begin = std::min(n, t * perThread);
    size_t end = std::min(n, begin + perThread);
    for (int r = 0; r < runs; ++r) {
      barrier();
      auto s = std::chrono::steady_clock::now();
      for (int p = 0; p < passes; ++p) {
        sink[t] += sum(data + begin, end - begin);
        barrier();
      }
      if (t == 0 && r >= 3)
        times.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - s)
                .count());
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nThreads; ++t)
    pool.emplace_back(work, t);
  work(0);
  for (std::thread &th : pool)
    th.join();
  loom::freeLongLived(data);
  std::sort(times.begin(), times.end());
  auto pct = [&](double q) {
    return times[std::min(times.size() - 1, size_t(q * times.size()))];
  };
  float total = 0;
  for (float v : sink)
    total += v;
  llvm::outs() << llvm::format(
      "{\"cid\": \"%s\", \"peer\": \"stream-read\", \"threads\": %d, "
      "\"median_s\": %.6g, \"p10_s\": %.6g, \"p90_s\": %.6g, \"reps\": %zu, "
      "\"bytes\": %llu, \"passes\": %d, \"checksum\": %g}\n",
      cid.c_str(), nThreads, pct(0.5), pct(0.1), pct(0.9), times.size(),
      (unsigned long long)bytes, passes.getValue(), double(total));
  return 0;
}
