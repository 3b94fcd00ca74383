#include "core/threads.h"

#include <omp.h>

namespace seek {

int max_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

namespace detail {
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx) {
#pragma omp parallel num_threads(nthreads)
  fn(ctx, omp_get_thread_num(), omp_get_num_threads());
}
}  // namespace detail

}  // namespace seek
