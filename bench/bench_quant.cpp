// matmul against GGML block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K) and BF16, against the
// machine's limits, measured here (roofline.h):
//   bench_quant [--threads N] [--size 4096] [--quick]
//  1. decode GEMV, M = 1, on [size x size] weights, cycling through enough copies (>= 512 MiB of
//     each dtype) that they come from DRAM, not the L3: GB/s of weight bytes read and its share of
//     the measured read bandwidth (the decode roofline);
//  2. prefill, M = 512, on one [size x size] weight: GFLOP/s (2·M·N·K per call) and the speed-up
//     over BF16 weights at Precision::BF16 (the default) on the same shape.
// Weights are real quantizations (quantize_row of Gaussian rows; 512 distinct rows tiled), so the
// scales and codes are those a GGUF file holds.
#include <CLI/CLI.hpp>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "roofline.h"

using namespace seek;
using kernels::Precision;
using kernels::WeightView;

namespace {

using bench::Buffer;

// `copies` [rows, cols] matrices of dtype t back to back: 512 distinct rows, quantized (or rounded
// to bf16) from N(0, 0.02²), repeated.
struct WeightSet {
  Buffer data;
  std::vector<WeightView> views;
  int64_t each;
  WeightSet(DType t, int64_t rows, int64_t cols, int copies)
      : data(size_t(dtype_bytes(t, rows * cols)) * size_t(copies)),
        each(dtype_bytes(t, rows * cols)) {
    const int64_t distinct = std::min<int64_t>(rows, 512), row_bytes = dtype_bytes(t, cols);
    std::vector<float> x(size_t(distinct * cols));
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (float& v : x) v = nd(rng);
    uint8_t* base = data.bytes();
    if (t == DType::BF16) {
      for (size_t i = 0; i < x.size(); ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(base + 2 * i, &h, 2);
      }
    } else {
      kernels::quantize_row(t, x.data(), base, distinct * cols);
    }
    const int64_t total_rows = rows * copies;
#pragma omp parallel for schedule(static)
    for (int64_t r = distinct; r < total_rows; ++r)  // also the first touch of the pages
      std::memcpy(base + r * row_bytes, base + (r % distinct) * row_bytes, size_t(row_bytes));
    for (int c = 0; c < copies; ++c)
      views.push_back(WeightView{t, rows, cols, cols, base + c * each});
  }
};

// Best seconds per call over passes through all copies (at least `min_time` in total).
template <class F>
double time_per_call(int calls_per_pass, F&& pass, double min_time) {
  pass();  // warm-up: page-in, thread pool, scratch buffers
  double best = 1e30, total = 0;
  int reps = 0;
  while (total < min_time || reps < 3) {
    const double t0 = bench::now_s();
    pass();
    const double dt = bench::now_s() - t0;
    best = std::min(best, dt / calls_per_pass);
    total += dt;
    ++reps;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = omp_get_max_threads();
  int64_t size = 4096;
  bool quick = false;
  CLI::App app{"bench_quant: matmul on GGML block-quantized weights against the machine's limits"};
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
  app.add_option("--size", size, "Weight rows = columns (a multiple of 256)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "Shorter timing loops, 256 MiB per dtype");
  CLI11_PARSE(app, argc, argv);
  if (size % 256) {
    std::fprintf(stderr, "--size must be a multiple of 256\n");
    return 1;
  }
  if (cpu_max_isa() != Isa::Avx512) {
    std::fprintf(stderr, "bench_quant measures the AVX-512 kernels; this CPU has %s\n",
                 std::string(isa_name(cpu_max_isa())).c_str());
    return 1;
  }
  omp_set_num_threads(threads);
  const double bw = bench::read_bandwidth_gbs(threads);
  const double bf16_peak = bench::bf16_peak_gflops(threads);
  std::printf("bench_quant: isa %s, %d thread%s, read bandwidth %.1f GB/s, bf16 dot peak %.0f "
              "GFLOP/s; weights [%lld x %lld]\n",
              std::string(isa_name(cpu_isa())).c_str(), threads, threads > 1 ? "s" : "", bw,
              bf16_peak, (long long)size, (long long)size);

  const size_t set_bytes = size_t(quick ? 256 : 512) << 20;
  const double min_time = quick ? 0.3 : 1.0;
  const DType types[] = {DType::BF16, DType::Q8_0, DType::Q6_K, DType::Q4_K, DType::Q4_0};
  std::printf("\n== decode GEMV, M = 1 (weights cycle through >= %zu MiB: DRAM, not L3)\n",
              set_bytes >> 20);
  std::vector<float> x(size_t(512 * size)), y(size_t(512 * size));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng);
  for (DType t : types) {
    const int64_t each = dtype_bytes(t, size * size);
    const int copies = int(std::max<int64_t>(2, int64_t(set_bytes) / each + 1));
    WeightSet ws(t, size, size, copies);
    const Precision p = Precision::BF16;
    const double s = time_per_call(copies, [&] {
      for (const WeightView& v : ws.views) kernels::matmul(x.data(), 1, v, y.data(), p);
    }, min_time);
    // The bandwidth again, right after: on a shared machine the limit moves, and the ratio is taken
    // against the larger of the two measurements (never flattering the kernel).
    const double bw_now = std::max(bw, bench::read_bandwidth_gbs(threads, size_t(1) << 30, 4));
    const double gbs = double(each) / s / 1e9;
    std::printf("  %-5s %6.2f bits/weight %8.1f us %7.1f GB/s %5.0f%% of bw (%.1f GB/s) %8.1f "
                "GFLOP/s\n",
                std::string(dtype_name(t)).c_str(), 8.0 * double(each) / double(size * size),
                s * 1e6, gbs, 100 * gbs / bw_now, bw_now, 2.0 * double(size * size) / s / 1e9);
  }

  // The same GEMV on ~1 MiB of weights, which stay in L2: what the kernel does when memory is not
  // the limit (it must be well above the bandwidth for decode to reach the roofline).
  std::printf("\n== decode GEMV, M = 1, ~1 MiB of weights in L2 [rows x %lld]\n", (long long)size);
  for (DType t : types) {
    const int64_t rows = std::max<int64_t>(8, (int64_t(1) << 20) / dtype_bytes(t, size) / 8 * 8);
    WeightSet ws(t, rows, size, 1);
    const int calls = 50;
    const double s = time_per_call(calls, [&] {
      for (int i = 0; i < calls; ++i) kernels::matmul(x.data(), 1, ws.views[0], y.data());
    }, min_time);
    std::printf("  %-5s %8.1f us %7.1f GB/s %5.0f%% of bw\n", std::string(dtype_name(t)).c_str(),
                s * 1e6, double(ws.each) / s / 1e9, 100 * double(ws.each) / s / 1e9 / bw);
  }

  // Few rows: a MoE expert's share of a prefill batch (V2-Lite: 512 tokens x 6 of 64 experts is
  // 48 rows per expert), and the rows where the weight-streaming GEMV hands over to the GEMM.
  std::printf("\n== small batches (GFLOP/s by M; weights [%lld x %lld], in cache)\n  M    ",
              (long long)size, (long long)size);
  const int64_t small_m[] = {4, 8, 9, 12, 16, 24, 32, 48, 64, 96, 128};
  for (int64_t m : small_m) std::printf("%7lld", (long long)m);
  std::printf("\n");
  for (DType t : types) {
    WeightSet ws(t, size, size, 1);
    std::printf("  %-5s", std::string(dtype_name(t)).c_str());
    for (int64_t m : small_m) {
      const double s = time_per_call(1, [&] {
        kernels::matmul(x.data(), m, ws.views[0], y.data(), Precision::BF16);
      }, min_time / 4);
      std::printf("%7.0f", 2.0 * double(m * size * size) / s / 1e9);
    }
    std::printf("\n");
  }

  const int64_t M = 512;
  std::printf("\n== prefill, M = %lld\n", (long long)M);
  double bf16_s = 0;
  for (DType t : types) {
    WeightSet ws(t, size, size, 1);
    const double s = time_per_call(1, [&] {
      kernels::matmul(x.data(), M, ws.views[0], y.data(), Precision::BF16);
    }, min_time);
    if (t == DType::BF16) bf16_s = s;
    const double gf = 2.0 * double(M * size * size) / s / 1e9;
    std::printf("  %-5s %8.2f ms %7.1f GFLOP/s %5.0f%% of bf16 dot peak  %5.2fx BF16\n",
                std::string(dtype_name(t)).c_str(), s * 1e3, gf, 100 * gf / bf16_peak,
                bf16_s / s);
  }
}
