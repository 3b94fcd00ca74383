#include "core/threads.h"

#include <omp.h>

#include <exception>

namespace seek {

int max_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

namespace detail {
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx) {
  std::exception_ptr first;  // written once, by the thread that wins `failed`; read after the join
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nthreads)
  {
    try {
      fn(ctx, omp_get_thread_num(), omp_get_num_threads());
    } catch (...) {
      if (!failed.exchange(true)) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}
}  // namespace detail

}  // namespace seek
