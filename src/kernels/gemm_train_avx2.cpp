// AVX2 float32 training GEMM: a 6x16 register-tile micro-kernel under the shared cache-blocked
// driver (gemm_train_internal.h). Sixteen ymm registers hold 12 accumulators, the 2 loads of a B
// row and 1 broadcast of A; per k step that is 12 independent FMAs, enough to cover the FMA
// latency (4-5 cycles) on two pipes (the Haswell shape of BLIS's sgemm).
#include <immintrin.h>

#include "kernels/gemm_train_internal.h"
#include "kernels/isa_target.h"

namespace seek::kernels::avx2 {
namespace {

// Lanes [0, n) of a ymm mask (n may be <= 0 or >= 8).
inline __m256i lanes(int64_t n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::clamp<int64_t>(n, 0, 8))), iota);
}

struct Tier : F32Panels<6> {
  static constexpr int64_t MR = 6, NR = 16;
  static constexpr int64_t KC = 256;      // a B panel [KC][NR] is 16 KiB: stays in L1
  static constexpr int64_t NC = 3072;     // packed B block [KC][NC] 3 MiB: shared, L3-resident
  static constexpr int64_t MC_MAX = 144;  // an A block [MC][KC] 144 KiB per thread: L2-resident

  // op(B)[k0 + k, j0 + c] for k < kc, c < nr into dst[k][NR], columns past nr zero.
  static void pack_b(Trans tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                     int64_t nr, float* dst) {
    if (tb == Trans::Yes) return pack_rows_as_columns<NR>(B, ldb, j0, nr, k0, kc, dst);
    const __m256i m0 = lanes(nr), m1 = lanes(nr - 8);
    for (int64_t k = 0; k < kc; ++k) {  // B stored [K, N]; masked lanes are never read
      const float* s = B + (k0 + k) * ldb + j0;
      _mm256_store_ps(dst + k * NR, _mm256_maskload_ps(s, m0));
      _mm256_store_ps(dst + k * NR + 8, _mm256_maskload_ps(s + 8, m1));
    }
  }

  // C[mr, nr] (+)= a[kc][MR] · b[kc][NR]
  static void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                           float* c, int64_t ldc, int64_t mr, int64_t nr, bool overwrite) {
    // Every loop over acc unrolled, so each acc[r] is a register: left rolled, the zeroing loop
    // made GCC keep acc on the stack and store all 12 accumulators in every k step (55 GFLOP/s
    // on 2 Zen 3 cores against OpenBLAS's 160; unrolled 140).
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + k * MR + r);
        acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
    const __m256i m0 = lanes(nr), m1 = lanes(nr - 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      if (r >= mr) continue;
      float* cr = c + r * ldc;
      if (!overwrite) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(cr, m0));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(cr + 8, m1));
      }
      _mm256_maskstore_ps(cr, m0, acc[r][0]);
      _mm256_maskstore_ps(cr + 8, m1, acc[r][1]);
    }
  }
};

}  // namespace

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p) {
  if (p == Precision::BF16)
    return gemm_blocked(RoundedToBf16<Tier>{}, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  gemm_blocked(Tier{}, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

}  // namespace seek::kernels::avx2
