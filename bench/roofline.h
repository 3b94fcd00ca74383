// The machine's limits, measured by the benchmark itself: memory read bandwidth and the peak
// rate of the bf16 dot-product and fp32 FMA units. Benchmarks print their figures as a ratio to
// these.
#pragma once
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own code (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <cstdlib>

namespace seek::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A buffer of whole 2 MiB pages, advised for transparent huge pages: bandwidth probes and the
// weights of kernel benchmarks (so TLB misses do not count against the kernels).
struct Buffer {
  void* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : n((bytes + (2u << 20) - 1) & ~size_t((2u << 20) - 1)) {
    p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    madvise(p, n, MADV_HUGEPAGE);
  }
  ~Buffer() { munmap(p, n); }
  Buffer(const Buffer&) = delete;
  uint8_t* bytes() const { return static_cast<uint8_t*>(p); }
  template <class T> T* as() const { return static_cast<T*>(p); }
};

// Sum of one thread's part read as `streams` interleaved sequential streams, 2 lines per step.
template <int streams>
__attribute__((target("avx512f"))) inline float read_streams(const char* p, size_t bytes) {
  const size_t per = bytes / streams & ~size_t(4095);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  for (size_t i = 0; i < per; i += 128)
    for (int s = 0; s < streams; ++s) {
      const float* q = reinterpret_cast<const float*>(p + size_t(s) * per + i);
      a0 = _mm512_add_ps(a0, _mm512_load_ps(q));
      a1 = _mm512_add_ps(a1, _mm512_load_ps(q + 16));
    }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// Read bandwidth with `threads` threads over a `bytes` buffer (huge pages, beyond L3): the best
// of `passes` passes, alternately with one and with 8 sequential streams per thread (a GEMV reads
// several weight rows at once, and on some machines several streams per core get more from DRAM
// than one), so the roofline is what the machine can deliver, not what one pattern gets.
__attribute__((target("avx512f"))) inline double read_bandwidth_gbs(int threads,
                                                                     size_t bytes = size_t(1) << 30,
                                                                     int passes = 10) {
  auto* buf = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  madvise(buf, bytes, MADV_HUGEPAGE);
#pragma omp parallel for num_threads(threads)
  for (size_t i = 0; i < bytes; i += 4096) std::memset(buf + i, int(i & 0x7f), 4096);
  double best = 0;
  for (int rep = 0; rep < passes; ++rep) {
    const double t0 = now_s();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const size_t chunk = bytes / size_t(omp_get_num_threads()) & ~size_t(4095);
      const char* p = buf + chunk * size_t(omp_get_thread_num());
      sink += rep % 2 ? read_streams<8>(p, chunk) : read_streams<1>(p, chunk);
    }
    const double dt = now_s() - t0;
    if (sink == 12345.f) std::abort();  // keep the loads alive
    best = std::max(best, double(bytes) / dt / 1e9);
  }
  munmap(buf, bytes);
  return best;
}

// Peak rates from registers only. 12 independent accumulators cover latency x throughput of both
// units on current cores. They are named variables (GCC keeps an accumulator array in memory and
// even interchanges the loops, measuring ~40% of the peak), start from different values, and pass
// through an empty asm each iteration, so the compiler can neither merge the chains nor drop them.
#define SEEK_ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SEEK_DECL(i) __m512 a##i = _mm512_set1_ps(float(i) * 1e-3f);
#define SEEK_SUM(i) s += _mm512_reduce_add_ps(a##i);
#define SEEK_KEEP                                                                             \
  __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), \
                   "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
// One loop per unit: `consts` declares the operands, `step(a)` is the instruction on accumulator a.
#define SEEK_PEAK_LOOP(name, isa, consts, step)                                  \
  __attribute__((target(isa), noinline)) inline float name(long iters) {         \
    SEEK_ACC12(SEEK_DECL)                                                        \
    consts;                                                                      \
    for (long i = 0; i < iters; ++i) {                                           \
      SEEK_ACC12(step)                                                           \
      SEEK_KEEP                                                                  \
    }                                                                            \
    float s = 0;                                                                 \
    SEEK_ACC12(SEEK_SUM)                                                         \
    return s;                                                                    \
  }
#define SEEK_DP_STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, x);
#define SEEK_FMA_STEP(i) a##i = _mm512_fmadd_ps(a##i, x, y);
SEEK_PEAK_LOOP(dp_loop, "avx512f,avx512bf16",
               const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), SEEK_DP_STEP)
SEEK_PEAK_LOOP(fma_loop, "avx512f",
               const __m512 x = _mm512_set1_ps(0.999f); const __m512 y = _mm512_set1_ps(1e-7f),
               SEEK_FMA_STEP)
#undef SEEK_PEAK_LOOP
#undef SEEK_DP_STEP
#undef SEEK_FMA_STEP
#undef SEEK_ACC12
#undef SEEK_DECL
#undef SEEK_SUM
#undef SEEK_KEEP

// Best of 5 runs of `loop` on `threads` threads; flop_per_instr = 64 (vdpbf16ps zmm: 32
// multiply-adds) or 32 (vfmadd zmm).
template <class Loop>
double peak_gflops(int threads, Loop loop, double flop_per_instr) {
  const long iters = 10'000'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    float sink = 0;
    const double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += loop(iters);
    best = std::max(best, threads * double(iters) * 12 * flop_per_instr / (now_s() - t0) / 1e9);
    if (sink == 1.2345f) std::abort();
  }
  return best;
}
inline double bf16_peak_gflops(int threads) { return peak_gflops(threads, dp_loop, 64); }
inline double fp32_peak_gflops(int threads) { return peak_gflops(threads, fma_loop, 32); }

}  // namespace seek::bench
