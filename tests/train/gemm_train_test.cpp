// The training GEMM's fast path against its scalar reference, for every transpose combination,
// ragged sizes (partial register tiles and cache blocks), strides and accumulate.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/cpu.h"
#include "kernels/gemm_train.h"

using namespace seek::kernels;

namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

void check(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, bool acc) {
  std::mt19937 rng(uint32_t(M * 131 + N * 7 + K));
  const int64_t pad = 3;  // strides wider than the rows
  const int64_t lda = (ta == Trans::No ? K : M) + pad, ldb = (tb == Trans::No ? N : K) + pad;
  const int64_t ldc = N + pad;
  auto A = random_vec(size_t((ta == Trans::No ? M : K) * lda), rng);
  auto B = random_vec(size_t((tb == Trans::No ? K : N) * ldb), rng);
  auto C0 = random_vec(size_t(M * ldc), rng);
  auto c_ref = C0, c_fast = C0;
  ref::gemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c_ref.data(), ldc, acc);
  gemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c_fast.data(), ldc, acc);
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
                                            << i << "," << j;
    }
}

}  // namespace

TEST(GemmTrain, MatchesReferenceAllTransposes) {
  if (seek::cpu_isa() != seek::Isa::Avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t sizes[][3] = {{1, 1, 1},   {12, 32, 8},   {13, 33, 17}, {5, 70, 3},
                              {150, 45, 400}, {300, 97, 33}, {7, 3100, 20}, {40, 64, 800}};
  for (auto& s : sizes)
    for (Trans ta : {Trans::No, Trans::Yes})
      for (Trans tb : {Trans::No, Trans::Yes})
        for (bool acc : {false, true}) check(ta, tb, s[0], s[1], s[2], acc);
}

TEST(GemmTrain, ZeroKClearsOrKeeps) {
  std::vector<float> c = {1, 2, 3, 4};
  gemm(Trans::No, Trans::No, 2, 2, 0, nullptr, 1, nullptr, 2, c.data(), 2, true);
  EXPECT_EQ(c[3], 4.0f);
  gemm(Trans::No, Trans::No, 2, 2, 0, nullptr, 1, nullptr, 2, c.data(), 2, false);
  EXPECT_EQ(c[3], 0.0f);
}
