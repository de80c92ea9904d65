//===- ThreadPool.cpp - the threads compiled models run on ------------===//
#include "runtime/ThreadPool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LOOM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define LOOM_PAUSE() asm volatile("yield")
#else
#define LOOM_PAUSE() std::this_thread::yield()
#endif

using namespace loom;

namespace {
/// How long an idle worker spins before it sleeps: longer than the serial
/// work between two parallel loops of a time step, far shorter than a
/// scheduler tick.
constexpr std::chrono::microseconds kSpin(200);

thread_local ThreadPool *currentPool = nullptr;
/// Set while a thread runs a part of a parallel loop: a nested parallel
/// loop runs serially.
thread_local bool insideLoop = false;
} // namespace

unsigned ThreadPool::hardwareThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = hardwareThreads();
  claims = std::make_unique<std::atomic<uint64_t>[]>(threads);
  for (unsigned i = 0; i < threads; ++i)
    claims[i] = 0;
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex);
    stopping = true;
  }
  wake.notify_all();
  for (std::thread &t : workers)
    t.join();
}

bool ThreadPool::claim(unsigned index, uint64_t gen) {
  // Read the job first: if the claim succeeds, the job cannot have ended
  // (range `index` was not done), so these are its fields.
  loom_parallel_body body = jobBody.load(std::memory_order_relaxed);
  void *context = jobContext.load(std::memory_order_relaxed);
  int64_t n = jobSize.load(std::memory_order_relaxed);
  unsigned parts = jobParts.load(std::memory_order_relaxed);
  uint64_t last = claims[index].load();
  if (index >= parts || last >= gen ||
      !claims[index].compare_exchange_strong(last, gen))
    return false;
  // Range `index` of `parts` nearly equal contiguous ranges of [0, n).
  int64_t begin = n * index / parts, end = n * (index + 1) / parts;
  insideLoop = true;
  body(context, begin, end);
  insideLoop = false;
  ++finished;
  return true;
}

void ThreadPool::work(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    // Wait for a new job: spin for a while, then sleep.
    auto start = std::chrono::steady_clock::now();
    unsigned spins = 0;
    while (generation.load() == seen && !stopping.load()) {
      LOOM_PAUSE();
      if (++spins % 256 == 0 &&
          std::chrono::steady_clock::now() - start > kSpin) {
        std::unique_lock<std::mutex> lock(sleepMutex);
        ++sleepers;
        wake.wait(lock,
                  [&] { return generation.load() != seen || stopping.load(); });
        --sleepers;
        break;
      }
    }
    if (stopping.load())
      return;
    seen = generation.load();
    claim(index, seen);
  }
}

void ThreadPool::run(loom_parallel_body body, void *context, int64_t n) {
  if (n <= 0)
    return;
  std::unique_lock<std::mutex> lock(busy, std::try_to_lock);
  if (workers.empty() || n == 1 || insideLoop || !lock.owns_lock()) {
    body(context, 0, n);
    return;
  }
  unsigned parts = unsigned(std::min<int64_t>(n, size()));
  uint64_t gen = generation.load() + 1; // only run() writes it, under `busy`
  finished = 0;
  jobBody.store(body, std::memory_order_relaxed);
  jobContext.store(context, std::memory_order_relaxed);
  jobSize.store(n, std::memory_order_relaxed);
  jobParts.store(parts, std::memory_order_relaxed);
  // Ranges this job does not have count as taken: a late worker reading
  // the next job's fields under this job's number can claim nothing.
  for (unsigned i = parts; i < size(); ++i)
    claims[i] = gen;
  generation = gen; // publishes the job (sequentially consistent)
  if (sleepers.load() > 0) {
    std::lock_guard<std::mutex> g(sleepMutex);
    wake.notify_all();
  }
  for (unsigned i = 0; i < parts; ++i)
    claim(i, gen);
  // The rest are running on workers, as long as ours: spin, yielding the
  // core now and then in case a worker waits for it.
  for (unsigned spins = 1; finished.load() != parts; ++spins)
    if (spins % 1024 == 0)
      std::this_thread::yield();
    else
      LOOM_PAUSE();
}

ThreadPoolScope::ThreadPoolScope(ThreadPool *pool) : previous(currentPool) {
  currentPool = pool;
}

ThreadPoolScope::~ThreadPoolScope() { currentPool = previous; }

extern "C" void loom_parallel_for(loom_parallel_body body, void *context,
                                  int64_t n) {
  if (currentPool)
    currentPool->run(body, context, n);
  else if (n > 0)
    body(context, 0, n);
}
