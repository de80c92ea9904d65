//===- ThreadPoolTest.cpp - the pool behind loom_parallel_for ---------===//
#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

using namespace loom;

namespace {

struct Record {
  std::vector<std::atomic<int>> hits;
  std::vector<std::thread::id> owner;
  explicit Record(int64_t n) : hits(n), owner(n) {}
};

void recordBody(void *ctx, int64_t begin, int64_t end) {
  auto *r = static_cast<Record *>(ctx);
  for (int64_t i = begin; i < end; ++i) {
    ++r->hits[i];
    r->owner[i] = std::this_thread::get_id();
  }
}

TEST(ThreadPool, EveryIterationRunsOnce) {
  for (unsigned threads : {1u, 2u, 3u, 8u})
    for (int64_t n : {1, 2, 3, 7, 64, 1000}) {
      ThreadPool pool(threads);
      Record r(n);
      pool.run(recordBody, &r, n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(r.hits[i].load(), 1) << threads << " threads, n=" << n;
    }
}

TEST(ThreadPool, SameRangesOnTheSameThreads) {
  // Range i always goes to worker i (or, when that worker has not started
  // it yet, to the caller): a thread's slice of the weights stays in its
  // cache across time steps. Ranges are contiguous.
  ThreadPool pool(3);
  Record first(300);
  pool.run(recordBody, &first, 300);
  auto caller = std::this_thread::get_id();
  EXPECT_EQ(first.owner[0], caller); // the caller runs range 0
  std::vector<std::thread::id> rangeOwner(3);
  for (int i = 0; i < 50; ++i) {
    Record r(300);
    pool.run(recordBody, &r, 300);
    for (int range = 0; range < 3; ++range) {
      auto id = r.owner[range * 100];
      for (int k = range * 100; k < (range + 1) * 100; ++k)
        ASSERT_EQ(r.owner[k], id) << "range " << range << " split";
      if (id == caller)
        continue;
      if (rangeOwner[range] == std::thread::id())
        rangeOwner[range] = id;
      EXPECT_EQ(id, rangeOwner[range]) << "range " << range << " moved";
    }
  }
}

/// A range that takes a while, so that the worker claims its own range
/// before the caller is free to take it.
void slowBody(void *ctx, int64_t begin, int64_t end) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  recordBody(ctx, begin, end);
}

TEST(ThreadPool, ParallelForUsesTheScopedPool) {
  Record serial(10);
  loom_parallel_for(recordBody, &serial, 10); // no pool: on this thread
  for (auto id : serial.owner)
    EXPECT_EQ(id, std::this_thread::get_id());
  ThreadPool pool(2);
  {
    ThreadPoolScope scope(&pool);
    Record r(10);
    loom_parallel_for(slowBody, &r, 10);
    EXPECT_NE(r.owner[9], std::this_thread::get_id());
  }
  Record after(10);
  loom_parallel_for(recordBody, &after, 10);
  EXPECT_EQ(after.owner[9], std::this_thread::get_id());
}

struct Nested {
  std::atomic<int> total{0};
};

void innerBody(void *ctx, int64_t begin, int64_t end) {
  static_cast<Nested *>(ctx)->total += int(end - begin);
}

void outerBody(void *ctx, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i)
    loom_parallel_for(innerBody, ctx, 5); // nested: runs serially
}

TEST(ThreadPool, NestedLoopsRunSerially) {
  ThreadPool pool(2);
  ThreadPoolScope scope(&pool);
  Nested n;
  loom_parallel_for(outerBody, &n, 4);
  EXPECT_EQ(n.total.load(), 20);
}

TEST(ThreadPool, ConcurrentCallersShareOnePool) {
  // Two host threads on one pool: one runs in parallel, the other serially;
  // both results are complete.
  ThreadPool pool(2);
  auto worker = [&] {
    ThreadPoolScope scope(&pool);
    for (int k = 0; k < 200; ++k) {
      Record r(37);
      loom_parallel_for(recordBody, &r, 37);
      for (auto &h : r.hits)
        ASSERT_EQ(h.load(), 1);
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
}

TEST(ThreadPool, IdleWorkersSleepAndWakeUp) {
  ThreadPool pool(2);
  Record r(8);
  pool.run(recordBody, &r, 8);
  // Past the spin time (200 us), the worker sleeps; a new job still
  // completes. Waits up to 5 s for it, in case the machine is busy.
  for (int i = 0; i < 500 && pool.sleepingWorkers() != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(pool.sleepingWorkers(), 1u);
  Record again(8);
  pool.run(recordBody, &again, 8);
  for (auto &h : again.hits)
    EXPECT_EQ(h.load(), 1);
}

} // namespace
