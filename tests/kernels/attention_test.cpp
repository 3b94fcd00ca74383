// attention_decode, every ISA tier and both row types, against the scalar reference on awkward
// shapes: 1..128 heads (head groups and their remainder), 1..1100 rows (one tile, many tiles,
// several blocks with a short last one), widths and value widths off every SIMD width, strides
// larger than the rows.
//
// Tolerance. With a_j = scale·Σ_k |q_k·row_jk|, each score is off by at most γ·a_j from the
// reference's, γ = (W + 8)·u (u = 2^-24; the same exact products, summed in another order), so
// each weight e^(s_j − M) by a factor within 1 ± (γ·max a + 8u) (vexp is within ~2 ulp of
// std::exp); the weighted sum and the normalizer add ~(n + 8)·u each. The output is a convex
// combination of value rows, so it moves by at most twice the weights' relative error times
// max|v|. BF16 rows: the kernel and the reference round q and the weights the same way (the
// weights relative to their block's max), but a weight whose exponential differs in its last bits
// (vexp vs std::exp, the sums' order) may round to the neighbouring bf16: another 2^-8 relative.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/attention.h"
#include "kernels/isa.h"

namespace seek::kernels {
namespace {

using test::isas;
using test::IsaScope;

struct Shape {
  int64_t nh, n, W, dv, pad;  // pad: extra stride of q and rows
};

// The row types: F32, or BF16 (the same values, rounded).
enum class Rows { F32, BF16 };

struct Problem {
  Shape s;
  std::vector<float> q, rows;
  std::vector<uint16_t> rows16;
  float scale;
  Problem(const Shape& sh, std::mt19937& rng, float sharpness) : s(sh) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    q.resize(size_t(s.nh * (s.W + s.pad)));
    rows.resize(size_t(s.n * (s.W + s.pad)));
    for (float& v : q) v = nd(rng);
    for (float& v : rows) v = nd(rng);
    for (float v : rows) rows16.push_back(f32_to_bf16(v));
    scale = sharpness / std::sqrt(float(s.W));
  }
  std::vector<float> run(Rows p, bool reference) const {
    const int64_t ld = s.W + s.pad;
    std::vector<float> out(size_t(s.nh * (s.dv + 1)), -1.0f);
    auto call = [&](auto fn, const auto* r) { fn(q.data(), s.nh, ld, r, s.n, ld, s.W, s.dv, scale, out.data(), s.dv + 1); };
    using F32Fn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t,
                           int64_t, float, float*, int64_t);
    using Bf16Fn = void (*)(const float*, int64_t, int64_t, const uint16_t*, int64_t, int64_t,
                            int64_t, int64_t, float, float*, int64_t);
    if (p == Rows::F32)
      call(reference ? F32Fn(ref::attention_decode) : F32Fn(attention_decode), rows.data());
    else
      call(reference ? Bf16Fn(ref::attention_decode) : Bf16Fn(attention_decode), rows16.data());
    return out;
  }
  double tolerance(Rows p) const {
    const double u = std::ldexp(1.0, -24), gamma = double(s.W + 8) * u;
    const int64_t ld = s.W + s.pad;
    double max_a = 0, max_v = 0;
    for (int64_t h = 0; h < s.nh; ++h)
      for (int64_t j = 0; j < s.n; ++j) {
        double a = 0;
        for (int64_t k = 0; k < s.W; ++k) a += std::abs(q[size_t(h * ld + k)] * rows[size_t(j * ld + k)]);
        max_a = std::max(max_a, double(scale) * a);
      }
    for (int64_t j = 0; j < s.n; ++j)
      for (int64_t c = 0; c < s.dv; ++c) max_v = std::max(max_v, double(std::abs(rows[size_t(j * ld + c)])));
    double rel = 2 * (gamma * max_a + 8 * u) + 2 * double(s.n + 8) * u;
    if (p == Rows::BF16) rel += std::ldexp(1.0, -8);
    return rel * max_v;
  }
};

std::vector<Shape> shapes() {
  return {{1, 1, 24, 16, 0},     {3, 5, 37, 20, 1},     {16, 33, 576, 512, 0},
          {16, 513, 576, 512, 0}, {20, 1100, 72, 64, 3}, {17, 64, 40, 33, 0},
          {128, 100, 48, 32, 5},  {2, 2, 8, 1, 0},       {16, 1024, 64, 48, 0}};
}

std::string name(const Shape& s) {
  return "nh=" + std::to_string(s.nh) + " n=" + std::to_string(s.n) + " W=" + std::to_string(s.W) +
         " dv=" + std::to_string(s.dv) + " pad=" + std::to_string(s.pad);
}

class AttentionTest : public ::testing::TestWithParam<Isa> {};

TEST_P(AttentionTest, DecodeMatchesReference) {
  IsaScope scope(GetParam());
  std::mt19937 rng(42);
  for (const Shape& s : shapes())
    for (float sharpness : {1.0f, 4.0f}) {
      const Problem pb(s, rng, sharpness);
      for (Rows p : {Rows::F32, Rows::BF16}) {
        SCOPED_TRACE(name(s) + " sharpness " + std::to_string(sharpness) +
                     (p == Rows::BF16 ? " bf16" : " f32"));
        const std::vector<float> got = pb.run(p, false), want = pb.run(p, true);
        const double tol = pb.tolerance(p);
        for (int64_t h = 0; h < s.nh; ++h) {
          for (int64_t c = 0; c < s.dv; ++c) {
            const size_t i = size_t(h * (s.dv + 1) + c);
            ASSERT_NEAR(got[i], want[i], tol) << "h=" << h << " c=" << c;
          }
          ASSERT_EQ(got[size_t(h * (s.dv + 1) + s.dv)], -1.0f) << "wrote past dv, h=" << h;
        }
      }
    }
}

// Fixed blocks merged in a fixed order: any thread count, and a call from inside a parallel
// region (one thread), give the same bits.
TEST_P(AttentionTest, DecodeDoesNotDependOnTheThreadCount) {
  IsaScope scope(GetParam());
  std::mt19937 rng(7);
  const int before = omp_get_max_threads();
  for (const Shape& s : {Shape{16, 1700, 576, 512, 0}, Shape{5, 1030, 40, 24, 2}}) {
    const Problem pb(s, rng, 2.0f);
    for (Rows p : {Rows::F32, Rows::BF16}) {
      SCOPED_TRACE(name(s) + (p == Rows::BF16 ? " bf16" : " f32"));
      omp_set_num_threads(1);
      const std::vector<float> one = pb.run(p, false);
      for (int t : {2, 3}) {
        omp_set_num_threads(t);
        EXPECT_EQ(pb.run(p, false), one) << t << " threads";
      }
      std::vector<float> nested;
      parallel_run(2, [&](int t, int) {
        if (t == 0) nested = pb.run(p, false);
      });
      EXPECT_EQ(nested, one) << "inside a parallel region";
    }
  }
  omp_set_num_threads(before);
}

// A prefill attends through products: scores by a BF16 matmul (q rounded as the kernel rounds
// it), attention_weights_bf16, then the weighted sum by matmul_t. For BF16 rows this is the
// decode kernel's result up to fp32 rounding, much closer than the bf16 rounding either applies:
// the weights are the kernel's own (relative to the same block maxima, through the same exp).
TEST_P(AttentionTest, BlockWeightsGiveTheDecodeResultThroughProducts) {
  IsaScope scope(GetParam());
  std::mt19937 rng(11);
  for (const Shape& s : {Shape{16, 1300, 576, 512, 0}, Shape{4, 37, 80, 64, 0}, Shape{3, 513, 40, 24, 0}}) {
    SCOPED_TRACE(name(s));
    const Problem pb(s, rng, 3.0f);
    const std::vector<float> dec = pb.run(Rows::BF16, false);
    const WeightView kv = WeightView::bf16(pb.rows16.data(), s.n, s.W, s.W);
    std::vector<float> sc(size_t(s.nh * s.n)), out(size_t(s.nh * s.dv));
    matmul(pb.q.data(), s.nh, s.W, kv, sc.data(), s.n, Precision::BF16);
    for (int64_t h = 0; h < s.nh; ++h) {
      float* r = sc.data() + h * s.n;
      for (int64_t j = 0; j < s.n; ++j) r[j] *= pb.scale;
      attention_weights_bf16(r, s.n);
    }
    matmul_t(sc.data(), s.nh, s.n, kv.slice_cols(0, s.dv), out.data(), s.dv);
    double worst = 0, max_v = 0;
    for (int64_t h = 0; h < s.nh; ++h)
      for (int64_t c = 0; c < s.dv; ++c)
        worst = std::max(worst, double(std::abs(out[size_t(h * s.dv + c)] - dec[size_t(h * (s.dv + 1) + c)])));
    for (float v : pb.rows) max_v = std::max(max_v, double(std::abs(v)));
    // Measured: ≤ 9e-6·max|v| (a weight off by one bf16 step in a few rows, through last-bit
    // differences of the scores); a softmax without the bf16 weights is 1.8e-4 to 5e-4 off.
    EXPECT_LT(worst, std::ldexp(1.0, -15) * max_v);
  }
}

TEST(Attention, DecodeRejectsBadShapes) {
  std::vector<float> q(64, 1.0f), rows(64, 1.0f), out(64);
  std::vector<uint16_t> rows16(64, f32_to_bf16(1.0f));
  EXPECT_THROW(attention_decode(q.data(), 2, 8, rows.data(), 0, 8, 8, 4, 1.0f, out.data(), 4), Error);
  EXPECT_THROW(attention_decode(q.data(), 2, 8, rows.data(), 2, 8, 8, 9, 1.0f, out.data(), 9), Error);
  EXPECT_THROW(attention_decode(q.data(), 2, 8, rows16.data(), 2, 8, 8, 9, 1.0f, out.data(), 9), Error);
  EXPECT_THROW(attention_decode(q.data(), 2, 8, rows16.data(), 2, 4, 8, 4, 1.0f, out.data(), 4), Error);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, AttentionTest, ::testing::ValuesIn(isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace seek::kernels
