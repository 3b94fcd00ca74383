// AVX-512 float32 GEMM (BLIS structure): B is packed into [KC][NR] panels shared by all threads,
// each thread packs its own [KC][MR] panels of A and runs a 12x32 register-tile micro-kernel
// (24 zmm accumulators; per k step 2 loads of B and 12 broadcasts of A feed 24 FMAs, enough
// independent chains to cover the FMA latency on two pipes).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm_train.h"

namespace seek::kernels::avx512 {
namespace {

constexpr int64_t MR = 12, NR = 32;
constexpr int64_t KC = 384;     // a B panel [KC][NR] is 48 KiB: streams through L1 from L2
constexpr int64_t NC = 3072;    // packed B block [KC][NC] ~4.5 MiB: shared, L3-resident
constexpr int64_t MC_MAX = 144;  // an A block [MC][KC] ~216 KiB per thread: L2-resident

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// op(A)[i0 + r, k0 + k] for r < mr, k < kc into dst[k][MR], rows past mr zero.
void pack_a(Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
            int64_t kc, float* dst) {
  if (ta == Trans::Yes) {  // A stored [K, M]: a panel row is contiguous
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = A + (k0 + k) * lda + i0;
      float* d = dst + k * MR;
      int64_t r = 0;
      for (; r < mr; ++r) d[r] = s[r];
      for (; r < MR; ++r) d[r] = 0.0f;
    }
    return;
  }
  for (int64_t r = 0; r < MR; ++r) {
    if (r < mr) {
      const float* s = A + (i0 + r) * lda + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = s[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
    }
  }
}

// op(B)[k0 + k, j0 + c] for k < kc, c < nr into dst[k][NR], columns past nr zero.
void pack_b(Trans tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nr,
            float* dst) {
  if (tb == Trans::No) {  // B stored [K, N]
    const __mmask16 m0 = __mmask16((1u << std::min<int64_t>(nr, 16)) - 1);
    const __mmask16 m1 = nr > 16 ? __mmask16((1u << (nr - 16)) - 1) : 0;
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = B + (k0 + k) * ldb + j0;
      _mm512_storeu_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
      _mm512_storeu_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
    return;
  }
  for (int64_t c = 0; c < NR; ++c) {  // B stored [N, K]: transpose
    if (c < nr) {
      const float* s = B + (j0 + c) * ldb + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = s[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = 0.0f;
    }
  }
}

// C[mr, nr] (+)= a[kc][MR] · b[kc][NR]
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t ldc, int64_t mr, int64_t nr, bool overwrite) {
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


float* aligned(std::vector<float>& v, size_t n) {
  v.resize(n + 16);
  auto p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

}  // namespace

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Enough A blocks for every thread when M is small; MR-aligned.
  const int64_t MC = std::clamp(round_up((M + nt - 1) / nt, MR), MR, MC_MAX);
  const int64_t n_ic = (M + MC - 1) / MC;
  const int64_t n_split = n_ic >= nt ? 1 : nt;
  thread_local std::vector<float> bbuf;
  const int64_t nc_max = std::min(NC, round_up(N, NR));
  float* bp = aligned(bbuf, size_t(KC * nc_max));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), n_jr = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool overwrite = !accumulate && pc == 0;
#pragma omp parallel num_threads(nt)
      {
#pragma omp for schedule(static)
        for (int64_t jr = 0; jr < n_jr; ++jr)
          pack_b(tb, B, ldb, pc, kc, jc + jr * NR, std::min(NR, nc - jr * NR), bp + jr * kc * NR);
        thread_local std::vector<float> abuf;
        float* ap = aligned(abuf, size_t(MC * KC));
// Tasks are (A block, slice of B panels): when M is too small to give every thread an A block,
        // the B panels are split instead and each thread packs the (small) A block itself.
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_ic * n_split; ++task) {
          const int64_t ic = task / n_split, part = task % n_split;
          const int64_t i0 = ic * MC, mc = std::min(MC, M - i0);
          const int64_t jr0 = n_jr * part / n_split, jr1 = n_jr * (part + 1) / n_split;
          if (jr0 == jr1) continue;
          for (int64_t ir = 0; ir < mc; ir += MR)
            pack_a(ta, A, lda, i0 + ir, std::min(MR, mc - ir), pc, kc, ap + ir * kc);
          for (int64_t jr = jr0; jr < jr1; ++jr)
            for (int64_t ir = 0; ir < mc; ir += MR)
              micro_kernel(kc, ap + ir * kc, bp + jr * kc * NR, C + (i0 + ir) * ldc + jc + jr * NR,
                           ldc, std::min(MR, mc - ir), std::min(NR, nc - jr * NR), overwrite);
        }
      }
    }
  }
}

}  // namespace seek::kernels::avx512
