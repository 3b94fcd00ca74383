// parallel_for / parallel_run: every index runs exactly once, exceptions reach the caller after
// the join instead of terminating the process, and a nested call runs inline on its thread.
#include "core/threads.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"

namespace seek {
namespace {

// At least two threads, whatever OMP_NUM_THREADS says, so the parallel paths are exercised.
class ThreadsTest : public testing::Test {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(std::max(saved_, 3));
  }
  void TearDown() override { omp_set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_F(ThreadsTest, ParallelForCoversEveryIndexOnce) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_for(n, 3, [&](int64_t i) { hits[size_t(i)].fetch_add(1); });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[size_t(i)].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST_F(ThreadsTest, ParallelForIsRoundRobinOverThreads) {
  // Thread t runs t, t + nt, ...: the partitioning callers rely on for balance.
  const int64_t n = 12;
  std::vector<int> owner(size_t(n), -1);
  int team = 0;
  parallel_for(n, 3, [&](int64_t i) {
    owner[size_t(i)] = omp_get_thread_num();
    if (i == 0) team = omp_get_num_threads();
  });
  ASSERT_GE(team, 2);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(owner[size_t(i)], int(i % team)) << i;
}

TEST_F(ThreadsTest, ParallelForRethrowsOnTheCaller) {
  std::atomic<int> ran{0};
  try {
    parallel_for(100, 3, [&](int64_t i) {
      ran.fetch_add(1);
      if (i == 4) fail("item {} is bad", i);
    });
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "item 4 is bad");
  }
  EXPECT_GE(ran.load(), 1);
  // The pool is still usable afterwards.
  std::atomic<int64_t> sum{0};
  parallel_for(10, 3, [&](int64_t i) { sum.fetch_add(i); });
  EXPECT_EQ(sum.load(), 45);
}

TEST_F(ThreadsTest, ParallelForRethrowsInline) {
  EXPECT_THROW(parallel_for(5, 1, [](int64_t i) {
                 if (i == 2) throw std::out_of_range("x");
               }),
               std::out_of_range);
}

TEST_F(ThreadsTest, ParallelRunRethrowsOnTheCaller) {
  EXPECT_THROW(parallel_run(3, [](int t, int) {
                 if (t == 1) throw std::runtime_error("thread 1");
               }),
               std::runtime_error);
}

TEST_F(ThreadsTest, NestedParallelForRunsInlineOnItsThread) {
  const int64_t n = 4, m = 50;
  std::vector<std::atomic<int>> hits(size_t(n * m));
  std::atomic<int> moved{0};
  parallel_for(n, 3, [&](int64_t i) {
    const std::thread::id outer = std::this_thread::get_id();
    EXPECT_EQ(max_threads(), 1);
    int64_t expect = 0;
    parallel_for(m, 3, [&](int64_t j) {
      if (std::this_thread::get_id() != outer) moved.fetch_add(1);
      EXPECT_EQ(j, expect++);  // inline: in order
      hits[size_t(i * m + j)].fetch_add(1);
    });
  });
  EXPECT_EQ(moved.load(), 0);
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
}

}  // namespace
}  // namespace seek
