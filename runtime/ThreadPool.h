//===- ThreadPool.h - the threads compiled models run on --------*- C++ -*-===//
//
// Compiled code splits a parallel loop by calling `loom_parallel_for` (see
// codegen/Parallelize.cpp), which runs it on the thread pool made current
// for the calling thread by a ThreadPoolScope (or serially, without one).
//
// The pool splits a loop of n iterations into contiguous ranges, one per
// thread, always the same range for the same thread and n: the slice of the
// weights a thread reads in one time step is the slice it reads in the
// next, and stays in its core's cache (the DeepCPU idea). The caller's
// thread works on the first range, then on any range whose worker has not
// started it (so a busy machine never makes a job wait for a descheduled
// worker). Idle workers spin for a short while (a time step's gap) and
// then sleep on a condition variable, so an idle pool costs no CPU.
//
// This library uses only the C++ standard library: it is the run-time
// support of compiled code, linked by the JIT and by ahead-of-time objects.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_THREADPOOL_H
#define LOOM_RUNTIME_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

extern "C" {
/// The body of an outlined parallel loop: runs iterations [begin, end).
typedef void (*loom_parallel_body)(void *context, int64_t begin, int64_t end);
/// Runs iterations [0, n) of `body` on the current thread pool.
void loom_parallel_for(loom_parallel_body body, void *context, int64_t n);
}

namespace loom {

class ThreadPool {
public:
  /// A pool of `threads` threads in all, the caller's included (so
  /// `threads - 1` workers). 0 means every core.
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  unsigned size() const { return unsigned(workers.size()) + 1; }

  /// Runs iterations [0, n) of `body`, split into size() contiguous ranges.
  /// Returns when all have run. A call made while the pool is busy (from
  /// another host thread, or from inside a body) runs serially instead.
  void run(loom_parallel_body body, void *context, int64_t n);

  /// Workers asleep (not spinning) right now.
  unsigned sleepingWorkers() const { return sleepers.load(); }

  /// The cores of this machine (at least 1).
  static unsigned hardwareThreads();

private:
  void work(unsigned index);
  /// Runs range `index` of job `gen` unless a thread has claimed it.
  bool claim(unsigned index, uint64_t gen);

  std::vector<std::thread> workers;
  std::mutex busy; // held by the caller of run() for the whole call
  // The current job, published by storing its number in `generation`.
  // Its fields are atomics because a late worker may read them while the
  // next job is written; it then fails to claim a range and drops them.
  std::atomic<loom_parallel_body> jobBody{nullptr};
  std::atomic<void *> jobContext{nullptr};
  std::atomic<int64_t> jobSize{0};
  std::atomic<unsigned> jobParts{0};
  std::atomic<uint64_t> generation{0};
  // claims[i]: the last job whose range i a thread has started. The owner
  // of range i claims it as soon as it sees the job; the caller, after its
  // own range, runs every range no worker has started (a worker the OS has
  // not scheduled yet), so a job never waits for a sleeping thread.
  std::unique_ptr<std::atomic<uint64_t>[]> claims;
  std::atomic<unsigned> finished{0}; // ranges of the current job done
  std::atomic<bool> stopping{false};
  // Sleeping workers wait here after spinning.
  std::mutex sleepMutex;
  std::condition_variable wake;
  std::atomic<unsigned> sleepers{0};
};

/// Makes `pool` the pool that loom_parallel_for uses on this thread, for the
/// scope's lifetime (nullptr: serial).
class ThreadPoolScope {
public:
  explicit ThreadPoolScope(ThreadPool *pool);
  ~ThreadPoolScope();
  ThreadPoolScope(const ThreadPoolScope &) = delete;
  ThreadPoolScope &operator=(const ThreadPoolScope &) = delete;

private:
  ThreadPool *previous;
};

} // namespace loom

#endif
