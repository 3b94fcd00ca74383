// Fork-join parallelism for kernels and model code: a thin layer over OpenMP so call sites say
// how many threads are worth using and how work is split, and nothing else. Exceptions thrown by
// the work are carried out of the parallel region (none may leave an OpenMP region: that would
// call std::terminate) and rethrown on the calling thread after the join.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace seek {

// Threads a kernel may use here: omp_get_max_threads() (OMP_NUM_THREADS, omp_set_num_threads),
// or 1 inside a parallel region (no nested parallelism: the outer loop owns the cores).
int max_threads();

namespace detail {
// Runs fn on a team of nthreads; if any thread throws, the first exception caught is rethrown
// here after every thread has finished (the others' exceptions are dropped).
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx);
}

// Runs fn(thread_index, nthreads) on `nthreads` threads and waits; inline when nthreads <= 1.
// An exception from fn reaches the caller after the join (see detail::run_parallel).
template <class F>
void parallel_run(int nthreads, F&& fn) {
  if (nthreads <= 1) {
    fn(0, 1);
    return;
  }
  auto tramp = [](void* ctx, int t, int nt) {
    (*static_cast<std::remove_reference_t<F>*>(ctx))(t, nt);
  };
  detail::run_parallel(nthreads, tramp, &fn);
}

// Runs fn(i) for every i in [0, n) on min(nthreads, max_threads(), n) threads, round robin:
// thread t runs i = t, t + nt, t + 2·nt, ... in that order (OpenMP schedule(static, 1)), so
// items of similar cost listed together spread evenly. Runs inline, in order, on one thread and
// inside a parallel region (a nested call). If an iteration throws, iterations not yet started
// are skipped on every thread, those running finish, and the first exception caught is rethrown
// on the calling thread after the join.
template <class F>
void parallel_for(int64_t n, int nthreads, F&& fn) {
  const int nt = int(std::min<int64_t>(std::min(nthreads, max_threads()), n));
  if (nt <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<bool> stop{false};
  parallel_run(nt, [&](int t, int nth) {
    try {
      for (int64_t i = t; i < n && !stop.load(std::memory_order_relaxed); i += nth) fn(i);
    } catch (...) {
      stop.store(true, std::memory_order_relaxed);
      throw;
    }
  });
}

// [begin, end) of part t of n items split into nt contiguous parts whose boundaries fall on
// multiples of `align` (the last part takes the remainder). Contiguous parts keep each thread's
// weight stream sequential and its output rows on cache lines no other thread writes.
inline std::pair<int64_t, int64_t> split_range(int64_t n, int t, int nt, int64_t align = 1) {
  const int64_t units = (n + align - 1) / align;
  const int64_t b = units * t / nt * align, e = units * (t + 1) / nt * align;
  return {std::min(b, n), std::min(e, n)};
}

// Elementwise work (an exp or so per item) worth a thread of its own: below this many items per
// thread, starting the team costs more than it saves.
inline constexpr int64_t kElementwiseGrain = 1 << 14;

// Runs fn(begin, end) over [0, n) in contiguous parts, one per thread, on as many threads as give
// each at least `grain` items (inline for less). For elementwise and row-wise work whose items
// are independent: the result does not depend on the split.
template <class F>
void parallel_ranges(int64_t n, int64_t grain, F&& fn) {
  const int nt = int(std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, max_threads()));
  parallel_run(nt, [&](int t, int nth) {
    const auto [b, e] = split_range(n, t, nth);
    if (b < e) fn(b, e);
  });
}

}  // namespace seek
