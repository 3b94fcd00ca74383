// Every matmul / matmul_t variant (ISA x weight dtype x precision) against the scalar reference,
// on awkward shapes: M = 1..37 (GEMV and GEMM sides), K and N off every SIMD and block width,
// views sliced out of larger tensors (row0/col0 != 0, ld > cols), FP8 blocks cut in both
// directions, and data pointers misaligned by one element.
//
// Tolerance. ref and the kernel compute the same exact products (both widen weights exactly; for
// Precision::BF16 both round activations to bf16 with RNE) and differ only in how they round the
// sum: ref sums left to right, the kernels in SIMD lanes, blocks and (FP8) with the scale applied
// per block. Each of the ~K roundings of a partial sum is at most u·Σ|x·w| (u = 2^-24), so
//     |y - y_ref| <= 2 · (K + 8) · u · Σ_k |x_k · w_k|
// (the +8 covers the per-product / per-block roundings). Rounding activations to bf16 where they
// should not be (Precision::F32) would be off by ~2^-9·Σ|x·w|, far outside this bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "kernels/matmul.h"
#include "kernels/isa.h"

namespace seek::kernels {
namespace {

// A full tensor [full_rows, ld] in a dtype, stored at a deliberately misaligned address, with a
// view on a sub-block of it.
struct Weights {
  std::vector<uint8_t> storage;
  std::vector<float> scales;
  WeightView full, view;
};

uint16_t random_f16(std::mt19937& rng) {
  // Mostly normal magnitudes around 1, some subnormals, both signs; never inf/NaN.
  const uint32_t r = rng();
  const uint32_t exp = (r % 20 == 0) ? 0 : 8 + (r >> 8) % 14;
  return uint16_t(((r >> 4) & 1) << 15 | exp << 10 | (rng() & 0x3ff));
}

Weights make_weights(DType dt, int64_t rows, int64_t cols, int64_t row0, int64_t col0,
                     std::mt19937& rng) {
  const int64_t full_rows = rows + row0 + 3, ld = cols + col0 + 5, esz = int64_t(dtype_size(dt));
  Weights w;
  // One element of misalignment (e.g. bf16 at an address = 2 mod 4, fp8 at an odd byte).
  const int64_t offset = esz;
  w.storage.assign(size_t(full_rows * ld * esz + offset + 64), 0);
  uint8_t* data = w.storage.data() + offset;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t i = 0; i < full_rows * ld; ++i) {
    switch (dt) {
      case DType::F32: {
        const float v = nd(rng);
        std::memcpy(data + 4 * i, &v, 4);
        break;
      }
      case DType::BF16: {
        const uint16_t v = f32_to_bf16(nd(rng));
        std::memcpy(data + 2 * i, &v, 2);
        break;
      }
      case DType::F16: {
        const uint16_t v = random_f16(rng);
        std::memcpy(data + 2 * i, &v, 2);
        break;
      }
      case DType::F8_E4M3: {
        uint8_t q;
        do q = uint8_t(rng()); while ((q & 0x7f) == 0x7f);  // every finite code, subnormals too
        data[i] = q;
        break;
      }
      default: break;
    }
  }
  w.full.dtype = dt;
  w.full.rows = full_rows;
  w.full.cols = ld;
  w.full.ld = ld;
  w.full.data = data;
  if (dt == DType::F8_E4M3) {
    const int64_t sr = (full_rows + 127) / 128, sc = (ld + 127) / 128;
    std::uniform_real_distribution<float> ud(1e-3f, 1e-1f);
    w.scales.resize(size_t(sr * sc));
    for (float& s : w.scales) s = ud(rng);
    w.full.scale_inv = w.scales.data();
    w.full.scale_ld = sc;
  }
  w.view = w.full.slice_rows(row0, rows).slice_cols(col0, cols);
  return w;
}

// Activations [M, ld] with ld > cols, one float past a 64-byte boundary.
struct Matrix {
  std::vector<float> storage;
  float* data;
  int64_t ld;
  Matrix(int64_t rows, int64_t cols, int64_t pad, float fill) : ld(cols + pad) {
    storage.assign(size_t(rows * ld + 17), fill);
    data = storage.data() + 1;
  }
};

void fill_random(Matrix& x, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t k = 0; k < cols; ++k) x.data[m * x.ld + k] = nd(rng);
}

float act(float v, Precision p) { return p == Precision::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v; }

constexpr float kSentinel = -12345.0f;

// y = x·Wᵀ (transposed = false) or y = x·W (true) against ref, with padding left untouched.
void check(bool transposed, const Weights& w, int64_t M, Precision p, std::mt19937& rng) {
  const WeightView& v = w.view;
  const int64_t in = transposed ? v.rows : v.cols, out = transposed ? v.cols : v.rows;
  Matrix x(M, in, 3, 0.0f), y(M, out, 5, kSentinel), yr(M, out, 5, kSentinel);
  fill_random(x, M, in, rng);
  if (transposed) {
    matmul_t(x.data, M, x.ld, v, y.data, y.ld);
    ref::matmul_t(x.data, M, x.ld, v, yr.data, yr.ld);
  } else {
    matmul(x.data, M, x.ld, v, y.data, y.ld, p);
    ref::matmul(x.data, M, x.ld, v, yr.data, yr.ld, p);
  }
  const double u = std::ldexp(1.0, -24);
  int failures = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t o = 0; o < out; ++o) {
      double mag = 0;
      for (int64_t i = 0; i < in; ++i)
        mag += std::fabs(double(act(x.data[m * x.ld + i], p)) *
                         (transposed ? v.at(i, o) : v.at(o, i)));
      const double got = y.data[m * y.ld + o], want = yr.data[m * yr.ld + o];
      const double tol = 2.0 * double(in + 8) * u * mag + 1e-30;
      if (!(std::fabs(got - want) <= tol) && failures++ < 5)
        ADD_FAILURE() << "m=" << m << " out=" << o << " got " << got << " want " << want
                      << " |diff| " << std::fabs(got - want) << " tol " << tol;
    }
    for (int64_t o = out; o < y.ld; ++o)
      if (y.data[m * y.ld + o] != kSentinel && failures++ < 5)
        ADD_FAILURE() << "wrote padding at m=" << m << " col " << o;
  }
}

struct Shape {
  int64_t M, N, K, row0, col0;  // W view [N, K] at (row0, col0) of a larger tensor
};

std::string shape_name(const Shape& s) {
  return "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
         " row0=" + std::to_string(s.row0) + " col0=" + std::to_string(s.col0);
}

// GEMV side (M <= 8, and up to 32 for the bf16-dot GEMV): every M, widths around 16/32/128, slices cutting FP8 blocks.
std::vector<Shape> gemv_shapes() {
  std::vector<Shape> s;
  for (int64_t M = 1; M <= 8; ++M) {
    s.push_back({M, 7, 5, 0, 0});
    s.push_back({M, 33, 31, 1, 3});
    s.push_back({M, 19, 100, 120, 30});
  }
  s.push_back({1, 1, 1, 0, 0});
  s.push_back({1, 130, 300, 100, 50});   // FP8: 3 row blocks x 3-4 column blocks, both partial
  s.push_back({3, 257, 129, 0, 127});
  s.push_back({2, 600, 520, 5, 7});      // large enough to run on several threads
  // FP8 under Precision::BF16: the bf16-dot GEMV up to M·K = 6144 (a long x: 48 chunks, partial
  // scale blocks at both ends), the fp32 GEMV above it.
  s.push_back({1, 20, 6100, 5, 64});
  s.push_back({1, 20, 6500, 120, 30});
  s.push_back({8, 40, 2100, 0, 32});
  // Batched decode (bf16-dot GEMV up to 32 rows): one and two activation chunks, FP8 views
  // whose 128-column blocks start mid-view (col0 % 128 = 32, 64, 96) and cut rows mid-block.
  s.push_back({12, 130, 300, 100, 64});
  s.push_back({16, 40, 2100, 0, 32});
  s.push_back({17, 9, 33, 5, 96});
  s.push_back({29, 70, 260, 127, 0});
  s.push_back({32, 300, 520, 0, 0});
  return s;
}

// GEMM side (M > 8): micro-tile remainders, K blocks (256) and row chunks (256) crossed.
std::vector<Shape> gemm_shapes() {
  return {{9, 33, 31, 0, 0},      {12, 32, 32, 0, 0},   {13, 65, 100, 3, 5},
          {24, 100, 257, 128, 1}, {37, 19, 129, 7, 127}, {37, 300, 520, 100, 50},
          {20, 50, 200, 120, 0},  {64, 70, 600, 0, 0}};
}

using test::isas;
using test::IsaScope;

using Param = std::tuple<Isa, DType>;
class MatmulTest : public ::testing::TestWithParam<Param> {};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_" +
         std::string(dtype_name(std::get<1>(info.param)));
}

void run_shapes(bool transposed, const std::vector<Shape>& shapes) {
  const auto [isa, dt] = MatmulTest::GetParam();
  IsaScope scope(isa);
  std::mt19937 rng(1234);
  for (const Shape& s : shapes) {
    const Weights w = make_weights(dt, s.N, s.K, s.row0, s.col0, rng);
    for (Precision p : {Precision::F32, Precision::BF16}) {
      if (transposed && p == Precision::BF16) continue;
      SCOPED_TRACE(shape_name(s) + (p == Precision::BF16 ? " bf16" : " f32"));
      check(transposed, w, s.M, p, rng);
    }
  }
}

TEST_P(MatmulTest, GemvMatchesReference) { run_shapes(false, gemv_shapes()); }
TEST_P(MatmulTest, GemmMatchesReference) { run_shapes(false, gemm_shapes()); }
TEST_P(MatmulTest, TransposedMatchesReference) {
  std::vector<Shape> s = gemv_shapes();
  for (const Shape& g : gemm_shapes()) s.push_back(g);
  s.push_back({16, 2000, 80, 0, 0});  // attention over a KV cache: many rows, few columns
  run_shapes(true, s);
}

// One-hot activations pick single weights: y must be W[n, k] exactly, i.e. the dequantization of
// every FP8 code times its block scale is exact, with no rounding beyond WeightView::at's.
TEST_P(MatmulTest, OneHotRowsAreExactWeights) {
  const auto [isa, dt] = GetParam();
  IsaScope scope(isa);
  std::mt19937 rng(7);
  for (int64_t M : {int64_t(1), int64_t(5), int64_t(20)}) {
    const Weights w = make_weights(dt, 256, 160, 64, 96, rng);  // 256 rows see all FP8 codes
    const WeightView& v = w.view;
    for (Precision p : {Precision::F32, Precision::BF16}) {
      Matrix x(M, v.cols, 0, 0.0f), y(M, v.rows, 0, 0.0f);
      for (int64_t m = 0; m < M; ++m) x.data[m * x.ld + (m * 37) % v.cols] = 1.0f;
      matmul(x.data, M, x.ld, v, y.data, y.ld, p);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < v.rows; ++n)
          ASSERT_EQ(y.data[m * y.ld + n], v.at(n, (m * 37) % v.cols)) << "m=" << m << " n=" << n;
    }
    Matrix xt(M, v.rows, 0, 0.0f), yt(M, v.cols, 0, 0.0f);
    for (int64_t m = 0; m < M; ++m) xt.data[m * xt.ld + (m * 41) % v.rows] = 1.0f;
    matmul_t(xt.data, M, xt.ld, v, yt.data, yt.ld);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < v.cols; ++k)
        ASSERT_EQ(yt.data[m * yt.ld + k], v.at((m * 41) % v.rows, k)) << "m=" << m << " k=" << k;
  }
}

// A row's result does not depend on the rows beside it, up to a speculative verification's 9
// (model/mla.cpp's kVerifyTokens): decoding one token and verifying drafts in one batch must
// round every product sum the same way, or a greedy near-tie can go the other way. Bit for bit,
// on shapes that put rows in full tiles at one M and in tails at another, and K on both sides of
// the dot kernels' L1 limits (the bf16-dot GEMV's 2048, the FP8 one's 6144 columns).
TEST_P(MatmulTest, RowsDoNotDependOnTheBatchUpToNine) {
  const auto [isa, dt] = GetParam();
  IsaScope scope(isa);
  std::mt19937 rng(99);
  constexpr int64_t kRows = 9, N = 131;
  for (int64_t K : {int64_t(100), int64_t(768), int64_t(2048), int64_t(2100), int64_t(7168)}) {
    const Weights w = make_weights(dt, N, K, 0, 0, rng);
    Matrix x(kRows, K, 0, 0.0f);
    fill_random(x, kRows, K, rng);
    for (Precision p : {Precision::F32, Precision::BF16}) {
      std::vector<float> one(size_t(kRows * N));
      for (int64_t m = 0; m < kRows; ++m) matmul(x.data + m * x.ld, 1, x.ld, w.view, one.data() + m * N, N, p);
      for (int64_t M = 2; M <= kRows; ++M) {
        std::vector<float> y(size_t(M * N));
        matmul(x.data, M, x.ld, w.view, y.data(), N, p);
        for (int64_t i = 0; i < M * N; ++i)
          ASSERT_EQ(y[size_t(i)], one[size_t(i)]) << "K=" << K << " M=" << M << " row " << i / N << " col "
                                                  << i % N << (p == Precision::BF16 ? " bf16" : " f32");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, MatmulTest,
                         ::testing::Combine(::testing::ValuesIn(isas()),
                                            ::testing::Values(DType::F32, DType::BF16, DType::F16,
                                                              DType::F8_E4M3)),
                         param_name);

// Precision::F32 keeps every activation bit; Precision::BF16 rounds activations (RNE) but not
// weights. x·I with x = 1 + 2^-20 (not a bf16) tells them apart on every path.
TEST(Matmul, PrecisionDecidesActivationRounding) {
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    for (int64_t M : {int64_t(1), int64_t(16)}) {
      const int64_t K = 48;
      std::vector<uint16_t> eye(size_t(K * K), 0);
      for (int64_t i = 0; i < K; ++i) eye[size_t(i * K + i)] = f32_to_bf16(1.0f);
      WeightView w{DType::BF16, K, K, K, eye.data()};
      std::vector<float> x(size_t(M * K)), y(size_t(M * K));
      for (size_t i = 0; i < x.size(); ++i) x[i] = 1.0f + std::ldexp(float(i % 7 + 1), -20);
      matmul(x.data(), M, w, y.data(), Precision::F32);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], x[i]) << isa_name(isa) << " " << i;
      matmul(x.data(), M, w, y.data(), Precision::BF16);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i]))) << isa_name(isa) << " " << i;
    }
  }
}

// An empty inner dimension is an empty sum; M = 0 writes nothing.
TEST(Matmul, EmptyShapes) {
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    float x[4] = {1, 2, 3, 4}, y[6] = {7, 7, 7, 7, 7, 7};
    WeightView w{DType::F32, 3, 0, 1, x};
    matmul(x, 2, w, y);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], 0.0f);
    y[0] = 7;
    matmul(x, 0, w, y);
    EXPECT_EQ(y[0], 7.0f);
  }
}

}  // namespace
}  // namespace seek::kernels
