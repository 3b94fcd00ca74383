// AVX-512 float32 training GEMM: a 12x32 register-tile micro-kernel (24 zmm accumulators; per k
// step 2 loads of B and 12 broadcasts of A feed 24 FMAs, enough independent chains to cover the
// FMA latency on two pipes) under the shared cache-blocked driver (gemm_train_internal.h).
#include <immintrin.h>

#include "kernels/gemm_train_internal.h"

namespace seek::kernels::avx512 {
namespace {

struct Tier {
  static constexpr int64_t MR = 12, NR = 32;
  static constexpr int64_t KC = 384;      // B panel [KC][NR] 48 KiB: streams through L1 from L2
  static constexpr int64_t NC = 3072;     // packed B block [KC][NC] ~4.5 MiB: shared, L3-resident
  static constexpr int64_t MC_MAX = 144;  // an A block [MC][KC] ~216 KiB per thread: L2-resident

  // op(B)[k0 + k, j0 + c] for k < kc, c < nr into dst[k][NR], columns past nr zero.
  static void pack_b(Trans tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                     int64_t nr, float* dst) {
    if (tb == Trans::Yes) return pack_rows_as_columns<NR>(B, ldb, j0, nr, k0, kc, dst);
    const __mmask16 m0 = __mmask16((1u << std::min<int64_t>(nr, 16)) - 1);
    const __mmask16 m1 = nr > 16 ? __mmask16((1u << (nr - 16)) - 1) : 0;
    for (int64_t k = 0; k < kc; ++k) {  // B stored [K, N]
      const float* s = B + (k0 + k) * ldb + j0;
      _mm512_storeu_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
      _mm512_storeu_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
  }

  // C[mr, nr] (+)= a[kc][MR] · b[kc][NR]
  static void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                           float* c, int64_t ldc, int64_t mr, int64_t nr, bool overwrite) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[k * MR + r]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
    const __mmask16 m0 = __mmask16((1u << std::min<int64_t>(nr, 16)) - 1);
    const __mmask16 m1 = nr > 16 ? __mmask16((1u << (nr - 16)) - 1) : 0;
    for (int r = 0; r < MR; ++r) {
      if (r >= mr) break;
      float* cr = c + r * ldc;
      if (overwrite) {
        _mm512_mask_storeu_ps(cr, m0, acc[r][0]);
        _mm512_mask_storeu_ps(cr + 16, m1, acc[r][1]);
      } else {
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, cr)));
        _mm512_mask_storeu_ps(cr + 16, m1,
                              _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, cr + 16)));
      }
    }
  }
};

}  // namespace

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  gemm_blocked<Tier>(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

}  // namespace seek::kernels::avx512
