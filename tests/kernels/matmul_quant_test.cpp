// matmul against block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K), every ISA variant against the
// scalar reference (ref::matmul = quant_dot per output), and the reference against the fp32
// product with the dequantized weights.
//
// Tolerances. The variants compute the reference's integer block sums exactly and differ only in
// how the per-block float terms are scaled and summed (lanes, FMAs), so |y - y_ref| is a few ulps
// of the sum of the terms' magnitudes, far below 1e-5 · |x_m| · |W_n|. Against the fp32 product,
// the difference is the activation quantization: |x̂ - x| <= d_x / 2 = max|x_block| / 254 per
// element, so by Cauchy-Schwarz |y - x·w| <= |x̂ - x| · |w| <= max|x| · sqrt(K) / 254 · |w|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/isa.h"

namespace seek::kernels {
namespace {

using test::isas;
using test::IsaScope;

// A quantized tensor [rows + 3, cols + 2 blocks] at an odd address, and a view of rows [2, 2 +
// rows), columns [1 block, 1 block + cols): block-aligned slicing in both directions.
struct QWeights {
  std::vector<uint8_t> storage;
  WeightView view;
};

QWeights make_weights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const int64_t blk = dtype_block(t), full_rows = rows + 3, ld = cols + 2 * blk;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(size_t(full_rows * ld));
  for (size_t i = 0; i < w.size(); ++i) w[i] = nd(rng) * (1.0f + float(i % 97) / 50);
  QWeights q;
  q.storage.assign(size_t(dtype_bytes(t, full_rows * ld) + 1), 0);
  quantize_row(t, w.data(), q.storage.data() + 1, full_rows * ld);
  const WeightView full{t, full_rows, ld, ld, q.storage.data() + 1};
  q.view = full.slice_rows(2, rows).slice_cols(blk, cols);
  return q;
}

double row_norm_x(const std::vector<float>& x, int64_t m, int64_t ldx, int64_t K) {
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += double(x[size_t(m * ldx + k)]) * x[size_t(m * ldx + k)];
  return std::sqrt(s);
}

double row_norm_w(const WeightView& w, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < w.cols; ++k) s += double(w.at(n, k)) * w.at(n, k);
  return std::sqrt(s);
}

struct Shape {
  int64_t M, N, K;
};

// K in whole blocks: for the 32-blocks also odd counts (3, 25), which the AVX-512 kernels finish
// with a single-block step.
std::vector<Shape> shapes(DType t) {
  std::vector<int64_t> Ks = {256, 768};
  if (dtype_block(t) == 32) Ks.insert(Ks.end(), {96, 800});
  std::vector<Shape> s;
  for (int64_t M : {1, 2, 3, 4, 5, 8, 9, 25, 37})
    for (int64_t N : {1, 7, 40})
      for (int64_t K : Ks) s.push_back({M, N, K});
  s.push_back({64, 200, 1024});  // big enough for several threads and weight tiles
  s.push_back({1, 520, 2048});   // a decode GEMV split across threads
  return s;
}

using Param = std::tuple<Isa, DType>;
class MatmulQuantTest : public ::testing::TestWithParam<Param> {};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_" +
         std::string(dtype_name(std::get<1>(info.param)));
}

TEST_P(MatmulQuantTest, MatchesReference) {
  const auto [isa, t] = GetParam();
  IsaScope scope(isa);
  std::mt19937 rng(99);
  for (const Shape& s : shapes(t)) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                 " K=" + std::to_string(s.K));
    const QWeights w = make_weights(t, s.N, s.K, rng);
    const int64_t ldx = s.K + 3, ldy = s.N + 2;
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(s.M * ldx));
    for (float& v : x) v = nd(rng);
    std::vector<float> y(size_t(s.M * ldy), NAN), yr(size_t(s.M * ldy), NAN);
    for (Precision p : {Precision::F32, Precision::BF16}) {  // precision does not apply
      matmul(x.data(), s.M, ldx, w.view, y.data(), ldy, p);
      ref::matmul(x.data(), s.M, ldx, w.view, yr.data(), ldy, Precision::F32);
      for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
          const float got = y[size_t(m * ldy + n)], want = yr[size_t(m * ldy + n)];
          if (isa == Isa::Scalar) {  // the portable path runs the reference's own dot
            ASSERT_EQ(got, want) << "m=" << m << " n=" << n;
            continue;
          }
          const double tol = 1e-5 * row_norm_x(x, m, ldx, s.K) * row_norm_w(w.view, n);
          ASSERT_NEAR(got, want, tol) << "m=" << m << " n=" << n;
        }
    }
  }
}

// A row's result does not depend on the rows beside it up to a speculative verification's 9
// (kernels::kExactRows): bit for bit, with 9 rows on both sides of the GEMV's groups of 4 and
// of AVX-512's hand-over to the repacked GEMM.
TEST_P(MatmulQuantTest, RowsDoNotDependOnTheBatchUpToNine) {
  const auto [isa, t] = GetParam();
  IsaScope scope(isa);
  std::mt19937 rng(5);
  constexpr int64_t kRows = 9, N = 37;
  for (int64_t K : {int64_t(256), int64_t(2048)}) {
    const QWeights w = make_weights(t, N, K, rng);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(kRows * K));
    for (float& v : x) v = nd(rng);
    std::vector<float> one(size_t(kRows * N));
    for (int64_t m = 0; m < kRows; ++m) matmul(x.data() + m * K, 1, K, w.view, one.data() + m * N, N);
    for (int64_t M = 2; M <= kRows; ++M) {
      std::vector<float> y(size_t(M * N));
      matmul(x.data(), M, K, w.view, y.data(), N);
      for (int64_t i = 0; i < M * N; ++i)
        ASSERT_EQ(y[size_t(i)], one[size_t(i)]) << "K=" << K << " M=" << M << " row " << i / N;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, MatmulQuantTest,
                         ::testing::Combine(::testing::ValuesIn(isas()),
                                            ::testing::Values(DType::Q8_0, DType::Q4_0,
                                                              DType::Q4_K, DType::Q6_K)),
                         param_name);

// The reference against the fp32 product with the dequantized weights (bound in the header).
TEST(MatmulQuant, ReferenceIsCloseToTheDequantizedProduct) {
  std::mt19937 rng(5);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t M = 3, N = 9, K = 1024;
    const QWeights w = make_weights(t, N, K, rng);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(M * K)), y(size_t(M * N));
    for (float& v : x) v = nd(rng);
    ref::matmul(x.data(), M, K, w.view, y.data(), N, Precision::F32);
    for (int64_t m = 0; m < M; ++m) {
      float xmax = 0;
      for (int64_t k = 0; k < K; ++k) xmax = std::max(xmax, std::fabs(x[size_t(m * K + k)]));
      for (int64_t n = 0; n < N; ++n) {
        double exact = 0;
        for (int64_t k = 0; k < K; ++k) exact += double(x[size_t(m * K + k)]) * w.view.at(n, k);
        const double bound = xmax * std::sqrt(double(K)) / 254 * row_norm_w(w.view, n);
        EXPECT_NEAR(y[size_t(m * N + n)], exact, bound) << dtype_name(t) << " m=" << m;
        // And it is a real bound, not a vacuous one: the error is well under the product's scale.
        EXPECT_LT(bound, 0.05 * row_norm_x(x, m, K, K) * row_norm_w(w.view, n));
      }
    }
  }
}

// One-hot rows pick a column of W: x = e_k quantizes exactly (d_x = 1/127, q = 127), so y is
// W[n, k] up to the rounding of the float scaling (1/127 · 127 and, for Q4_K, the scale and min
// terms rounded separately): within 1e-6 of the row's size.
TEST(MatmulQuant, OneHotRowsPickWeights) {
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    std::mt19937 rng(11);
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      const int64_t M = 6, N = 20, K = 512;
      const QWeights w = make_weights(t, N, K, rng);
      std::vector<float> x(size_t(M * K), 0.0f), y(size_t(M * N));
      for (int64_t m = 0; m < M; ++m) x[size_t(m * K + (m * 97 + 5) % K)] = 1.0f;
      matmul(x.data(), M, w.view, y.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          const float want = w.view.at(n, (m * 97 + 5) % K);
          ASSERT_NEAR(y[size_t(m * N + n)], want, 1e-6 * row_norm_w(w.view, n))
              << isa_name(isa) << " " << dtype_name(t) << " m=" << m << " n=" << n;
        }
    }
  }
}

TEST(MatmulQuant, TransposedAndPartialBlocksAreErrors) {
  std::vector<uint8_t> data(size_t(dtype_bytes(DType::Q4_K, 4 * 512)));
  std::vector<float> x(4 * 512), y(4 * 512);
  const WeightView w{DType::Q4_K, 4, 512, 512, data.data()};
  EXPECT_THROW(matmul_t(x.data(), 1, w, y.data()), Error);
  const WeightView bad{DType::Q8_0, 4, 40, 40, data.data()};
  EXPECT_THROW(matmul(x.data(), 1, bad, y.data()), Error);
}

}  // namespace
}  // namespace seek::kernels
