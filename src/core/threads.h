// Fork-join parallelism for kernels: a thin layer over OpenMP so call sites say how many
// threads are worth using and how work is split, and nothing else.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace seek {

// Threads a kernel may use here: omp_get_max_threads() (OMP_NUM_THREADS, omp_set_num_threads),
// or 1 inside a parallel region (no nested parallelism: the outer loop owns the cores).
int max_threads();

namespace detail {
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx);
}

// Runs fn(thread_index, nthreads) on `nthreads` threads and waits; inline when nthreads <= 1.
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

// [begin, end) of part t of n items split into nt contiguous parts whose boundaries fall on
// multiples of `align` (the last part takes the remainder). Contiguous parts keep each thread's
// weight stream sequential and its output rows on cache lines no other thread writes.
inline std::pair<int64_t, int64_t> split_range(int64_t n, int t, int nt, int64_t align = 1) {
  const int64_t units = (n + align - 1) / align;
  const int64_t b = units * t / nt * align, e = units * (t + 1) / nt * align;
  return {std::min(b, n), std::min(e, n)};
}

}  // namespace seek
