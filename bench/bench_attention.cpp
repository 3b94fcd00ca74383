// MLA decode attention (kernels/attention.h) at depth: one query token of nh heads over n latent
// cache rows, the fused flash-decoding kernel against the two products it replaced (scores by
// matmul, softmax, weighted sum by matmul_t).
//   bench_attention [--threads 2] [--depth 16384] [--heads 16] [--reps 20]
// Prints per call the time, the multiply-add rate against the machine's fp32 FMA / bf16 dot peak,
// and the cache read rate against the measured read bandwidth. Shapes are V2-Lite's (and V3's
// per 16 heads): rows of W = 576 (c_kv 512 | k_pe 64), values of 512.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "roofline.h"

using namespace seek;
using kernels::Precision;

int main(int argc, char** argv) {
  int threads = 2, depth = 16384, heads = 16, reps = 20;
  CLI::App app{"bench_attention: MLA decode attention at depth"};
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--depth", depth)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--reps", reps)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  const int64_t W = 576, dv = 512, n = depth, nh = heads;
  bench::Buffer cache(size_t(n * W) * sizeof(float));
  float* rows = cache.as<float>();
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t i = 0; i < n * W; ++i) rows[i] = nd(rng);
  std::vector<float> q(size_t(nh * W)), out(size_t(nh * dv)), s(size_t(nh * n));
  for (float& v : q) v = nd(rng);
  const float scale = 1.0f / std::sqrt(192.0f);
  const double macs = double(nh) * double(n) * double(W + dv), bytes = double(n * W) * 4;

  auto time = [&](auto&& fn) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const double t0 = bench::now_s();
      fn();
      t.push_back(bench::now_s() - t0);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const double bw = bench::read_bandwidth_gbs(threads, size_t(256) << 20, 4);
  const double fp32 = bench::fp32_peak_gflops(threads), bf16 = bench::bf16_peak_gflops(threads);
  std::printf("depth %d, %d heads, %d threads: %.1f MB of cache, %.2f G multiply-adds per call\n",
              depth, heads, threads, bytes / 1e6, macs / 1e9);
  std::printf("machine: read bandwidth %.1f GB/s, fp32 FMA peak %.0f GFLOP/s, bf16 dot peak %.0f GFLOP/s\n",
              bw, fp32, bf16);
  auto report = [&](const char* what, double sec, double peak, double bytes) {
    std::printf("%-34s %7.3f ms  %6.1f GFLOP/s = %5.1f%% of peak  %6.1f GB/s = %5.1f%% of bandwidth\n",
                what, sec * 1e3, 2 * macs / sec / 1e9, 100 * 2 * macs / sec / 1e9 / peak,
                bytes / sec / 1e9, 100 * bytes / sec / 1e9 / bw);
  };
  std::vector<uint16_t> rows16(size_t(n * W));
  for (size_t i = 0; i < rows16.size(); ++i) rows16[i] = f32_to_bf16(rows[i]);
  report("attention_decode f32 rows", time([&] {
           kernels::attention_decode(q.data(), nh, W, rows, n, W, W, dv, scale, out.data(), dv);
         }), fp32, bytes);
  report("attention_decode bf16 rows", time([&] {
           kernels::attention_decode(q.data(), nh, W, rows16.data(), n, W, W, dv, scale, out.data(), dv);
         }), bf16, bytes / 2);
  const WeightView kv = WeightView::f32(rows, n, W, W);
  report("matmul + softmax + matmul_t (f32)", time([&] {
           kernels::matmul(q.data(), nh, W, kv, s.data(), n);
           for (int64_t h = 0; h < nh; ++h) {
             float* r = s.data() + h * n;
             for (int64_t j = 0; j < n; ++j) r[j] *= scale;
             kernels::softmax(r, n);
           }
           kernels::matmul_t(s.data(), nh, n, kv.slice_cols(0, dv), out.data(), dv);
         }),
         fp32, bytes);
  return 0;
}
