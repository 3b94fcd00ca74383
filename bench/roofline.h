// The machine's limits, measured by the benchmark itself: memory read bandwidth and the peak
// rate of the bf16 dot-product and fp32 FMA units. Benchmarks print their figures as a ratio to
// these.
#pragma once
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace seek::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of several passes reading `bytes` with `threads` threads (wide loads, 4 accumulators).
__attribute__((target("avx512f"))) inline double read_bandwidth_gbs(int threads,
                                                                     size_t bytes = size_t(1) << 30) {
  auto* buf = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  madvise(buf, bytes, MADV_HUGEPAGE);
#pragma omp parallel for num_threads(threads)
  for (size_t i = 0; i < bytes; i += 4096) std::memset(buf + i, int(i & 0x7f), 4096);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double t0 = now_s();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      int nt = omp_get_num_threads(), id = omp_get_thread_num();
      size_t chunk = bytes / size_t(nt), begin = chunk * size_t(id), end = begin + chunk;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t i = begin; i < end; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(reinterpret_cast<const float*>(buf + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(reinterpret_cast<const float*>(buf + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(reinterpret_cast<const float*>(buf + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(reinterpret_cast<const float*>(buf + i + 192)));
      }
      sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
    double dt = now_s() - t0;
    if (sink == 12345.f) std::abort();  // keep the loads alive
    best = std::max(best, double(bytes) / dt / 1e9);
  }
  munmap(buf, bytes);
  return best;
}

// Peak GFLOP/s of vdpbf16ps (32 multiply-adds = 64 FLOP per instruction) from registers only.
__attribute__((target("avx512f,avx512bf16"))) inline double bf16_peak_gflops(int threads) {
  const long iters = 20'000'000;
  double t0 = now_s();
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    __m512 acc[12];
    for (auto& a : acc) a = _mm512_setzero_ps();
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = x;
    for (long i = 0; i < iters; ++i)
      for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
    for (auto& a : acc) sink += _mm512_reduce_add_ps(a);
  }
  double dt = now_s() - t0;
  if (sink == 1.f) std::abort();
  return double(threads) * double(iters) * 12 * 64 / dt / 1e9;
}

}  // namespace seek::bench
