// The training GEMM on every tier this CPU runs (scalar reference, AVX2, AVX-512, forced through
// set_cpu_isa) against its scalar reference, for every transpose combination, ragged sizes
// (partial register tiles and cache blocks of both SIMD tiers), strides and accumulate; and
// OpenBLAS's cblas_sgemm, an independent implementation, as the check on the reference itself and
// on every tier at larger sizes. Precision::BF16 and FP8 likewise on every tier against the
// reference (operands rounded to bf16; quantized to e4m3 with V3's scaling), and against float32
// within the error their formats imply; and the outlier that per-tensor FP8 scaling cannot take.
#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "kernels/gemm_train.h"
#include "kernels/isa.h"

namespace seek::kernels {
namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

using Gemm = void (*)(Trans, Trans, int64_t, int64_t, int64_t, const float*, int64_t,
                      const float*, int64_t, float*, int64_t, bool, Precision, Operand);

// C (+)= op(A)·op(B) through OpenBLAS (row-major; accumulate is beta = 1); float32 only.
void blas_gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision,
               Operand) {
  cblas_sgemm(CblasRowMajor, ta == Trans::Yes ? CblasTrans : CblasNoTrans,
              tb == Trans::Yes ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), 1.0f, A,
              int(lda), B, int(ldb), accumulate ? 1.0f : 0.0f, C, int(ldc));
}

// Runs `fast` and `expected` on the same random operands (strides wider than the rows) and
// compares; `fast` must not write C outside its N columns.
void check(Gemm fast, Gemm expected, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,
           bool acc, Precision p = Precision::F32, Operand b = Operand::Weight) {
  std::mt19937 rng(uint32_t(M * 131 + N * 7 + K));
  const int64_t pad = 3;
  const int64_t lda = (ta == Trans::No ? K : M) + pad, ldb = (tb == Trans::No ? N : K) + pad;
  const int64_t ldc = N + pad;
  auto A = random_vec(size_t((ta == Trans::No ? M : K) * lda), rng);
  auto B = random_vec(size_t((tb == Trans::No ? K : N) * ldb), rng);
  auto C0 = random_vec(size_t(M * ldc), rng);
  auto c_ref = C0, c_fast = C0;
  expected(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c_ref.data(), ldc, acc, p, b);
  fast(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c_fast.data(), ldc, acc, p, b);
  // float32 accumulation of K products of N(0,1) values: error ~ sqrt(K)·2^-24·|terms|.
  const float tol = 1e-5f * float(K) + 1e-5f;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t x = size_t(i * ldc + j);
      if (j >= N) {
        ASSERT_EQ(c_fast[x], C0[x]) << "wrote outside C at " << i << "," << j;
        continue;
      }
      ASSERT_NEAR(c_fast[x], c_ref[x], tol) << "M=" << M << " N=" << N << " K=" << K << " at "
                                            << i << "," << j << " ta=" << int(ta)
                                            << " tb=" << int(tb) << " acc=" << acc;
    }
}

void check_all_transposes(Gemm fast, Gemm expected, int64_t M, int64_t N, int64_t K,
                          Precision p = Precision::F32, Operand b = Operand::Weight) {
  for (Trans ta : {Trans::No, Trans::Yes})
    for (Trans tb : {Trans::No, Trans::Yes})
      for (bool acc : {false, true}) check(fast, expected, ta, tb, M, N, K, acc, p, b);
}

using test::isas;
using test::IsaScope;

class GemmTrainTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (int(GetParam()) > int(cpu_max_isa()))
      GTEST_SKIP() << "this CPU has no " << isa_name(GetParam());
  }
};

TEST_P(GemmTrainTest, MatchesReferenceAllTransposes) {
  IsaScope scope(GetParam());
  // Around both tiers' register tiles (6x16, 12x32) and cache blocks (KC 256/384, MC 144,
  // NC 3072), M small enough to split B panels among threads, and 1x1x1.
  const int64_t sizes[][3] = {{1, 1, 1},      {6, 16, 8},    {7, 17, 9},    {12, 32, 8},
                              {13, 33, 17},   {5, 70, 3},    {150, 45, 400}, {300, 97, 33},
                              {7, 3100, 20},  {40, 64, 800}, {145, 9, 257}};
  for (auto& s : sizes) check_all_transposes(&gemm, &ref::gemm, s[0], s[1], s[2]);
}

TEST_P(GemmTrainTest, Bf16MatchesReferenceAllTransposes) {
  IsaScope scope(GetParam());
  // Odd K (a zero-padded last pair), K blocks of the bf16 tier (768) and its pair panels.
  const int64_t sizes[][3] = {{1, 1, 1},    {12, 32, 2},   {13, 33, 17},  {5, 70, 3},
                              {150, 45, 401}, {300, 97, 33}, {7, 3100, 20}, {40, 64, 1601}};
  for (auto& s : sizes)
    check_all_transposes(&gemm, &ref::gemm, s[0], s[1], s[2], Precision::BF16);
}

// A reduced-precision product against float32 on the same random operands (x = A [M, K] · B
// [N, K]ᵀ): every entry within `bound` · Σ|a·b| (+ 1e-4 for the fp32 sums), and how far the two
// differ overall: the share of entries that differ and the relative L2 distance.
struct PrecisionGap {
  double differ = 0, rel_l2 = 0;
};
PrecisionGap gap_to_f32(Precision p, Operand b_kind, double bound, uint32_t seed) {
  const int64_t M = 37, N = 45, K = 300;
  std::mt19937 rng(seed);
  auto A = random_vec(size_t(M * K), rng), B = random_vec(size_t(N * K), rng);
  std::vector<float> c32(size_t(M * N)), c(size_t(M * N));
  gemm(Trans::No, Trans::Yes, M, N, K, A.data(), K, B.data(), K, c32.data(), N, false);
  gemm(Trans::No, Trans::Yes, M, N, K, A.data(), K, B.data(), K, c.data(), N, false, p, b_kind);
  double err2 = 0.0, ref2 = 0.0;
  int64_t differ = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double mag = 0.0;
      for (int64_t k = 0; k < K; ++k)
        mag += std::fabs(double(A[size_t(i * K + k)]) * B[size_t(j * K + k)]);
      const size_t x = size_t(i * N + j);
      EXPECT_LE(std::fabs(c[x] - c32[x]), mag * bound + 1e-4) << i << "," << j;
      err2 += double(c[x] - c32[x]) * (c[x] - c32[x]);
      ref2 += double(c32[x]) * c32[x];
      differ += c[x] != c32[x];
    }
  return {double(differ) / double(M * N), std::sqrt(err2 / ref2)};
}

// BF16: each product of rounded operands is within 2^-8 (relative) of the exact one; and the
// rounding does happen.
TEST_P(GemmTrainTest, Bf16IsFloat32WithinBf16Error) {
  IsaScope scope(GetParam());
  EXPECT_GT(gap_to_f32(Precision::BF16, Operand::Weight, 0x1p-8, 5).differ, 0.5)
      << "BF16 should round its operands";
}

TEST_P(GemmTrainTest, Fp8MatchesReferenceAllTransposes) {
  IsaScope scope(GetParam());
  // Partial K blocks (the 128-wide scale blocks), partial 128-row weight blocks, both kinds of B.
  const int64_t sizes[][3] = {{1, 1, 1}, {13, 33, 17}, {150, 45, 300}, {7, 200, 129}, {40, 64, 256}};
  for (auto& s : sizes)
    for (Operand b : {Operand::Weight, Operand::Activation})
      check_all_transposes(&gemm, &ref::gemm, s[0], s[1], s[2], Precision::FP8, b);
}

// FP8: e4m3 keeps 4 significant bits, so each quantized operand is within 1/16 (relative) of its
// value and each product within 2/16 + 1/256; random rounding errors mostly cancel, leaving a few
// percent of the result's norm; and it differs.
TEST_P(GemmTrainTest, Fp8IsFloat32WithinFp8Error) {
  IsaScope scope(GetParam());
  for (Operand b : {Operand::Weight, Operand::Activation}) {
    const PrecisionGap g = gap_to_f32(Precision::FP8, b, 2.0 / 16 + 1.0 / 256, 6);
    EXPECT_GT(g.rel_l2, 0.0);
    EXPECT_LT(g.rel_l2, 0.05);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTiers, GemmTrainTest,
                         ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// The SIMD tiers only: the scalar tier is the reference, which ReferenceMatchesOpenBlas checks
// (its double-precision loops would take seconds at these sizes).
using GemmTrainSimdTest = GemmTrainTest;

TEST_P(GemmTrainSimdTest, MatchesOpenBlasAtLargerSizes) {
  IsaScope scope(GetParam());
  const int64_t sizes[][3] = {{257, 515, 700}, {64, 3200, 130}, {600, 40, 1030}};
  for (auto& s : sizes) check_all_transposes(&gemm, &blas_gemm, s[0], s[1], s[2]);
}

INSTANTIATE_TEST_SUITE_P(SimdTiers, GemmTrainSimdTest, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(GemmTrain, ReferenceMatchesOpenBlas) {
  const int64_t sizes[][3] = {{1, 1, 1}, {13, 33, 17}, {97, 130, 300}};
  for (auto& s : sizes) check_all_transposes(&ref::gemm, &blas_gemm, s[0], s[1], s[2]);
}

// Why V3 scales per 1×128 tile: one activation outlier (1e4, as LLM activations have) shares a
// per-tensor scale with every other value, which then falls into e4m3's subnormal range or to
// zero; with fine-grained scaling only the outlier's own tile is affected. Rows without the
// outlier: fine-grained FP8 stays within a few percent of float32, per-tensor scaling does not.
TEST(GemmTrain, Fp8FineGrainedScalingSurvivesAnOutlier) {
  const int64_t M = 16, N = 24, K = 512;
  std::mt19937 rng(8);
  auto A = random_vec(size_t(M * K), rng), B = random_vec(size_t(N * K), rng);
  for (float& v : A) v *= 0.01f;  // small activations ...
  A[5] = 1e4f;                    // ... and one outlier in row 0
  std::vector<float> c32(size_t(M * N)), c8(size_t(M * N));
  gemm(Trans::No, Trans::Yes, M, N, K, A.data(), K, B.data(), K, c32.data(), N, false);
  gemm(Trans::No, Trans::Yes, M, N, K, A.data(), K, B.data(), K, c8.data(), N, false,
       Precision::FP8, Operand::Weight);
  // Per-tensor scaling of A (B as before: per block), summed exactly.
  float amax = 0;
  for (float v : A) amax = std::max(amax, std::fabs(v));
  const float S = amax / 448.0f;
  Fp8Operand b;
  quantize_fp8_operand(B.data(), K, false, N, K, Fp8Scaling::Block, b);
  const auto rel_err = [&](const std::vector<float>& c) {
    double e2 = 0, r2 = 0;
    for (int64_t i = 1; i < M; ++i)  // rows without the outlier
      for (int64_t j = 0; j < N; ++j) {
        const size_t x = size_t(i * N + j);
        e2 += double(c[x] - c32[x]) * (c[x] - c32[x]);
        r2 += double(c32[x]) * c32[x];
      }
    return std::sqrt(e2 / r2);
  };
  std::vector<float> ct(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(fp8_e4m3_to_f32(e4m3_rne(A[size_t(i * K + k)] / S))) * S *
               fp8_e4m3_to_f32(b.codes[size_t(j * K + k)]) * b.scale_at(j, k);
      ct[size_t(i * N + j)] = float(acc);
    }
  EXPECT_LT(rel_err(c8), 0.05);
  EXPECT_GT(rel_err(ct), 0.5);
}

TEST(GemmTrain, ZeroKClearsOrKeeps) {
  std::vector<float> c = {1, 2, 3, 4};
  gemm(Trans::No, Trans::No, 2, 2, 0, nullptr, 1, nullptr, 2, c.data(), 2, true);
  EXPECT_EQ(c[3], 4.0f);
  gemm(Trans::No, Trans::No, 2, 2, 0, nullptr, 1, nullptr, 2, c.data(), 2, false,
       Precision::BF16);
  EXPECT_EQ(c[3], 0.0f);
}

}  // namespace
}  // namespace seek::kernels
