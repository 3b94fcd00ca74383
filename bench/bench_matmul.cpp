// Matrix-product kernels against the machine's limits, all measured here:
//   bench_matmul [--threads N] [--quick] [--only gemv|batch|gemm|mm_t]
// (default: 1 thread and omp_get_max_threads(); OMP_NUM_THREADS sets the latter)
//  1. limits: memory read bandwidth (1 GiB, AVX-512 loads), vdpbf16ps and fp32 FMA peak
//     (register-only loops) per thread count;
//  2. decode GEMV (M = 1 and 8, both precisions) on BF16 and FP8 weights of DeepSeek shapes,
//     cycling through enough copies (>= 256 MiB) that the weights come from DRAM, not the L3:
//     GB/s of weights streamed and % of the read bandwidth;
//  3. batched decode (M = 1..32, both precisions): % of the roofline max(bytes/bw, flops/peak);
//  4. prefill GEMM (M = 512): GFLOP/s and % of the bf16 peak (Precision::BF16) or fp32 peak
//     (Precision::F32);
//  5. matmul_t on the shapes attention uses.
// Buffers are 2 MiB-aligned and madvise(MADV_HUGEPAGE)d, for the bandwidth probe as for weights.
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own code (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <CLI/CLI.hpp>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "kernels/matmul.h"
#include "roofline.h"

using namespace seek;
using kernels::Precision;
using kernels::WeightView;

namespace {

using bench::Buffer;

// Pseudo-random bytes, written in parallel (this is also the first touch of the pages).
void fill(Buffer& b, uint64_t seed, uint8_t and_mask = 0xff) {
  uint64_t* q = b.as<uint64_t>();
  const size_t n = b.n / 8;
  const uint64_t mask = 0x0101010101010101ull * and_mask;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = (i + seed) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    q[i] = (z ^ (z >> 29)) & mask;
  }
}

// ---- machine limits ---------------------------------------------------------------------------

struct Limits {
  double bw, bf16, fp32;
};

// ---- weights ----------------------------------------------------------------------------------

// `copies` distinct [rows, cols] weights of one dtype in one buffer (+ FP8 block scales).
struct WeightSet {
  Buffer data;
  std::vector<float> scales;
  std::vector<WeightView> views;
  WeightSet(DType dt, int64_t rows, int64_t cols, int copies)
      : data(size_t(rows * cols) * dtype_size(dt) * size_t(copies)) {
    // BF16: random bits with the exponent kept small (mask 0x3f on the high byte) so no inf/NaN.
    // FP8: codes as the release has them, Gaussian weights quantized with the block maximum at
    // 448 (~4.5 sigma): the kernels' speed may depend on the codes (e4m3 subnormals, ~1e-4 of
    // them, take a slower route in the bf16-dot GEMV), so uniform random bytes would misstate it.
    fill(data, 17);
    if (dt == DType::BF16) {
      uint16_t* h = data.as<uint16_t>();
      for (size_t i = 0; i < data.n / 2; ++i) h[i] &= 0xbfff;
    } else if (dt == DType::F8_E4M3) {
      std::vector<uint8_t> codes(1 << 16);
      std::mt19937 rng(5);
      std::normal_distribution<float> nd(0.0f, 448.0f / 4.5f);
      for (uint8_t& c : codes) c = f32_to_fp8_e4m3(std::clamp(nd(rng), -448.0f, 448.0f));
      uint8_t* q = data.as<uint8_t>();
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < data.n; ++i) {
        const uint64_t z = (i + 17) * 0x9E3779B97F4A7C15ull;
        q[i] = codes[(z ^ (z >> 29)) >> 48];
      }
    }
    const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
    scales.assign(size_t(sr * sc), 0.01f);
    for (int c = 0; c < copies; ++c) {
      WeightView v;
      v.dtype = dt;
      v.rows = rows;
      v.cols = cols;
      v.ld = cols;
      v.data = data.as<uint8_t>() + size_t(c) * size_t(rows * cols) * dtype_size(dt);
      if (dt == DType::F8_E4M3) {
        v.scale_inv = scales.data();
        v.scale_ld = sc;
      }
      views.push_back(v);
    }
  }
  size_t bytes_each() const {
    return size_t(views[0].rows * views[0].cols) * dtype_size(views[0].dtype);
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

void bench_gemv(const Limits& lim, bool quick) {
  struct Case { int64_t rows, cols; const char* what; };
  const Case cases[] = {{2048, 10944, "down_proj V2-Lite dense"},
                        {10944, 2048, "gate/up V2-Lite dense"},
                        {1408, 2048, "expert gate/up V2-Lite"},
                        {102400, 2048, "lm_head V2-Lite"}};
  for (DType dt : {DType::BF16, DType::F8_E4M3})
    for (const Case& c : cases) {
      const size_t each = size_t(c.rows * c.cols) * dtype_size(dt);
      const int copies = int(std::max<size_t>(1, ((quick ? 128u : 256u) << 20) / each + 1));
      WeightSet ws(dt, c.rows, c.cols, copies);
      for (int64_t M : {int64_t(1), int64_t(8)})
        for (Precision p : {Precision::F32, Precision::BF16}) {
          if (M == 8 && c.rows != 2048) continue;
          std::vector<float> x(size_t(M * c.cols), 0.5f), y(size_t(M * c.rows));
          const double t = time_per_call(copies, [&] {
            for (const WeightView& v : ws.views) kernels::matmul(x.data(), M, v, y.data(), p);
          }, quick ? 0.3 : 1.0);
          const double gbs = double(each) / t / 1e9;
          std::printf("  gemv  %-8s %-4s M=%-3lld [%6lld x %5lld] %-24s %8.1f us %7.1f GB/s "
                      "%5.0f%% of bw\n",
                      std::string(dtype_name(dt)).c_str(), p == Precision::BF16 ? "bf16" : "f32",
                      (long long)M, (long long)c.rows, (long long)c.cols, c.what, t * 1e6, gbs,
                      100 * gbs / lim.bw);
        }
    }
}

// Batched decode: M = 1..32 activation rows against weights streamed from DRAM, both precisions.
// The roofline of a call is max(bytes / bandwidth, 2·M·N·K / peak of that precision); the
// figure is that bound over the measured time.
void bench_batched(const Limits& lim, bool quick) {
  struct Case { int64_t rows, cols; const char* what; };
  const Case cases[] = {{102400, 2048, "lm_head V2-Lite"}, {1408, 2048, "expert gate/up"}};
  for (DType dt : {DType::BF16, DType::F8_E4M3})
    for (const Case& c : cases) {
      const size_t each = size_t(c.rows * c.cols) * dtype_size(dt);
      const int copies = int(std::max<size_t>(1, ((quick ? 128u : 256u) << 20) / each + 1));
      WeightSet ws(dt, c.rows, c.cols, copies);
      for (int64_t M : {1, 2, 4, 8, 16, 32})
        for (Precision p : {Precision::F32, Precision::BF16}) {
          std::vector<float> x(size_t(M * c.cols), 0.5f), y(size_t(M * c.rows));
          const double t = time_per_call(copies, [&] {
            for (const WeightView& v : ws.views) kernels::matmul(x.data(), M, v, y.data(), p);
          }, quick ? 0.2 : 0.5);
          const double flops = 2.0 * double(M * c.rows * c.cols);
          const double bound = std::max(double(each) / (lim.bw * 1e9),
                                        flops / ((p == Precision::BF16 ? lim.bf16 : lim.fp32) * 1e9));
          std::printf("  batch %-8s M=%-3lld [%6lld x %5lld] %-16s %-4s %8.1f us %7.1f GB/s %7.1f "
                      "GFLOP/s %5.0f%% of roofline\n",
                      std::string(dtype_name(dt)).c_str(), (long long)M, (long long)c.rows,
                      (long long)c.cols, c.what, p == Precision::BF16 ? "bf16" : "f32", t * 1e6,
                      double(each) / t / 1e9, flops / t / 1e9, 100 * bound / t);
        }
    }
}

void bench_gemm(const Limits& lim, bool quick) {
  const int64_t M = 512;
  struct Case { int64_t rows, cols; };
  const Case cases[] = {{2048, 2048}, {10944, 2048}, {2048, 10944}};
  std::vector<float> x(size_t(M * 10944));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 1000) - 500) * 1e-3f;
  for (const Case& c : cases)
    for (DType dt : {DType::BF16, DType::F8_E4M3}) {
      WeightSet ws(dt, c.rows, c.cols, 1);
      std::vector<float> y(size_t(M * c.rows));
      for (Precision p : {Precision::BF16, Precision::F32}) {
        const double t = time_per_call(1, [&] {
          kernels::matmul(x.data(), M, ws.views[0], y.data(), p);
        }, quick ? 0.3 : 1.0);
        const double gf = 2.0 * M * c.rows * c.cols / t / 1e9;
        const double pk = p == Precision::BF16 ? lim.bf16 : lim.fp32;
        std::printf(
            "  gemm  %-8s M=%lld [%6lld x %5lld] precision %-4s %8.2f ms %7.1f GFLOP/s %5.0f%% of "
            "%s peak\n",
            std::string(dtype_name(dt)).c_str(), (long long)M, (long long)c.rows, (long long)c.cols,
            p == Precision::BF16 ? "bf16" : "f32", t * 1e3, gf, 100 * gf / pk,
            p == Precision::BF16 ? "bf16" : "fp32");
      }
    }
}

void bench_matmul_t(const Limits& lim, bool quick) {
  struct Case { DType dt; int64_t M, rows, cols; const char* what; };
  const Case cases[] = {{DType::BF16, 1, 128, 512, "W_UK of one head, decode"},
                        {DType::BF16, 64, 128, 512, "W_UK of one head, 64 tokens"},
                        {DType::F32, 16, 4096, 512, "probs x c_kv cache, 16 heads"},
                        {DType::F32, 128, 4096, 512, "probs x c_kv cache, 128 heads"}};
  for (const Case& c : cases) {
    WeightSet ws(c.dt, c.rows, c.cols, 1);
    if (c.dt == DType::F32) fill(ws.data, 3, 0x3f);
    std::vector<float> x(size_t(c.M * c.rows), 0.25f), y(size_t(c.M * c.cols));
    const int calls = 20;
    const double t = time_per_call(calls, [&] {
      for (int i = 0; i < calls; ++i) kernels::matmul_t(x.data(), c.M, ws.views[0], y.data());
    }, quick ? 0.2 : 0.5);
    const double gf = 2.0 * c.M * c.rows * c.cols / t / 1e9;
    std::printf(
        "  mm_t  %-8s M=%-3lld [%6lld x %5lld] %-30s %8.1f us %7.1f GFLOP/s %5.0f%% of fp32 peak\n",
        std::string(dtype_name(c.dt)).c_str(), (long long)c.M, (long long)c.rows, (long long)c.cols,
        c.what, t * 1e6, gf, 100 * gf / lim.fp32);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts;
  bool quick = false;
  std::string only;  // one section, or all
  CLI::App app{"bench_matmul: the AVX-512 matmul kernels against the machine's limits"};
  app.add_option("--threads", thread_counts, "Thread count (default: 1 and all)")
      ->expected(1)
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "Shorter timing loops");
  app.add_option("--only", only, "One section")
      ->check(CLI::IsMember({"gemv", "batch", "gemm", "mm_t"}));
  CLI11_PARSE(app, argc, argv);
  if (thread_counts.empty()) {
    thread_counts = {1};
    if (omp_get_max_threads() > 1) thread_counts.push_back(omp_get_max_threads());
  }
  if (cpu_max_isa() != Isa::Avx512) {
    std::fprintf(stderr, "bench_matmul measures the AVX-512 kernels; this CPU has %s\n",
                 std::string(isa_name(cpu_max_isa())).c_str());
    return 1;
  }
  std::string cpu_name = "?";
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (!std::strncmp(line, "model name", 10) && std::strchr(line, ':')) {
        cpu_name = std::strchr(line, ':') + 2;
        cpu_name.erase(cpu_name.find_last_not_of("\n") + 1);
        break;
      }
    std::fclose(f);
  }
  std::printf("bench_matmul: %s, isa %s; GEMV weights cycle through >= 256 MiB (DRAM, not L3)\n",
              cpu_name.c_str(), std::string(isa_name(cpu_isa())).c_str());
  for (int t : thread_counts) {
    omp_set_num_threads(t);
    const Limits lim{bench::read_bandwidth_gbs(t), bench::bf16_peak_gflops(t), bench::fp32_peak_gflops(t)};
    std::printf(
        "\n== %d thread%s: read bandwidth %.1f GB/s, bf16 dot peak %.0f GFLOP/s, fp32 FMA peak "
        "%.0f GFLOP/s\n",
        t, t > 1 ? "s" : "", lim.bw, lim.bf16, lim.fp32);
    if (only.empty() || only == "gemv") bench_gemv(lim, quick);
    if (only.empty() || only == "batch") bench_batched(lim, quick);
    if (only.empty() || only == "gemm") bench_gemm(lim, quick);
    if (only.empty() || only == "mm_t") bench_matmul_t(lim, quick);
  }
}
