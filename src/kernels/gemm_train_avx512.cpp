// AVX-512 float32 training GEMM: a 12x32 register-tile micro-kernel (24 zmm accumulators; per k
// step 2 loads of B and 12 broadcasts of A feed 24 FMAs, enough independent chains to cover the
// FMA latency on two pipes) under the shared cache-blocked driver (gemm_train_internal.h).
// Precision::BF16 packs both operands as bf16 pairs and runs the prefill GEMM's vdpbf16ps
// micro-kernel (ukernel_bf16, matmul_avx512.h) under the same driver; Precision::FP8 packs the
// e4m3 codes the same way, one 128-wide K block at a time, and scales each block's sums.
// GCC 12's AVX-512 headers warn about their own code (see matmul_avx512.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <array>
#include <bit>

#include "kernels/gemm_train_internal.h"
#include "kernels/matmul_avx512.h"

namespace seek::kernels::avx512 {
namespace {

struct Tier : F32Panels<12> {
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


// Precision::BF16: panels of bf16 pairs, one uint32 per (k, k+1), as ukernel_bf16 reads them:
// A as [MR][kp] (row i's pairs contiguous), B as [kp][32]. An odd K block ends in a zero.
struct Bf16Tier {
  using Elem = uint32_t;
  static constexpr int64_t MR = kGemmMR, NR = kGemmNR;
  static constexpr int64_t KC = 768;      // 384 pairs: a B panel of 48 KiB, as the fp32 tier's
  static constexpr int64_t NC = 3072;
  static constexpr int64_t MC_MAX = 144;
  static int64_t depth(int64_t kc) { return (kc + 1) / 2; }

  // The (k, k+1) pairs of 16 columns from row k (`lo`) and row k + 1 (`hi`, null past the end).
  static __m512i pairs_of_rows(const float* lo, const float* hi, __mmask16 m) {
    const __m512 l = _mm512_maskz_loadu_ps(m, lo);
    const __m512 h = hi ? _mm512_maskz_loadu_ps(m, hi) : _mm512_setzero_ps();
    const __m512i lw = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(l));
    const __m512i hw = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(h));
    return _mm512_or_si512(lw, _mm512_slli_epi32(hw, 16));
  }
  // Values s[0 .. min(n, 32)) of one row as 16 pairs, in order (zero past n).
  static __m512i pairs_along_row(const float* s, int64_t n) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes16(n), s);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes16(n - 16), s + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  }

  static void pack_a(Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
                     int64_t kc, uint32_t* dst) {
    const int64_t kp = depth(kc);
    if (ta == Trans::No) {  // A stored [M, K]: a row of op(A) is contiguous
      for (int64_t r = 0; r < MR; ++r) {
        uint32_t* d = dst + r * kp;
        if (r >= mr) {
          std::memset(d, 0, size_t(kp) * sizeof(uint32_t));
          continue;
        }
        const float* s = A + (i0 + r) * lda + k0;
        for (int64_t k = 0; k < kc; k += 32)
          _mm512_mask_storeu_epi32(d + k / 2, lanes16((kc - k + 1) / 2),
                                   pairs_along_row(s + k, kc - k));
      }
      return;
    }
    // A stored [K, M]: rows k and k + 1 hold the pair of every row of op(A).
    alignas(64) uint32_t t[16];
    for (int64_t p = 0; p < kp; ++p) {
      const float* lo = A + (k0 + 2 * p) * lda + i0;
      _mm512_store_si512(t, pairs_of_rows(lo, 2 * p + 1 < kc ? lo + lda : nullptr, lanes16(mr)));
      for (int64_t r = 0; r < MR; ++r) dst[r * kp + p] = t[r];
    }
  }

  static void pack_b(Trans tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                     int64_t nr, uint32_t* dst) {
    const int64_t kp = depth(kc);
    if (tb == Trans::No) {  // B stored [K, N]: rows k and k + 1 give 32 pairs
      for (int64_t p = 0; p < kp; ++p) {
        const float* lo = B + (k0 + 2 * p) * ldb + j0;
        const float* hi = 2 * p + 1 < kc ? lo + ldb : nullptr;
        _mm512_store_si512(dst + p * NR, pairs_of_rows(lo, hi, lanes16(nr)));
        _mm512_store_si512(dst + p * NR + 16,
                           pairs_of_rows(lo + 16, hi ? hi + 16 : nullptr, lanes16(nr - 16)));
      }
      return;
    }
    // B stored [N, K]: column c of op(B) is row j0 + c of B, contiguous in k.
    alignas(64) uint32_t t[16];
    for (int64_t c = 0; c < NR; ++c) {
      if (c >= nr) {
        for (int64_t p = 0; p < kp; ++p) dst[p * NR + c] = 0;
        continue;
      }
      const float* s = B + (j0 + c) * ldb + k0;
      for (int64_t k = 0; k < kc; k += 32) {
        _mm512_store_si512(t, pairs_along_row(s + k, kc - k));
        const int64_t n = std::min<int64_t>(16, kp - k / 2);
        for (int64_t q = 0; q < n; ++q) dst[(k / 2 + q) * NR + c] = t[q];
      }
    }
  }

  static void micro_kernel(int64_t kc, const uint32_t* a, const uint32_t* b, float* c,
                           int64_t ldc, int64_t mr, int64_t nr, bool overwrite) {
    kBf16Kernels[mr - 1](a, depth(kc), b, depth(kc), c, ldc, lanes16(nr), lanes16(nr - 16),
                         nullptr, overwrite, nullptr);
  }
};


// Precision::FP8: the quantized operands' codes widened to bf16 pairs (e4m3 values are exact in
// bf16), one 128-wide K block per panel with that block's scales after the pairs: A [MR][kp]
// pairs + MR row scales, B [kp][32] pairs + 32 column scales. The micro-kernel sums the block
// in fp32 and adds it to C times row scale × column scale.
struct Fp8Tier {
  using Elem = uint32_t;
  static constexpr int64_t MR = kGemmMR, NR = kGemmNR;
  static constexpr int64_t KC = kFp8Block;
  static constexpr int64_t NC = 3072;
  static constexpr int64_t MC_MAX = 144;
  static int64_t depth(int64_t kc) { return (kc + 1) / 2 + 1; }
  const Fp8Operand& a;
  const Fp8Operand& b;

  // bf16 bits of every e4m3 code.
  static const uint16_t* bf16_of_code() {
    static const auto table = [] {
      std::array<uint16_t, 256> t{};
      for (int q = 0; q < 256; ++q) t[size_t(q)] = f32_to_bf16(fp8_e4m3_to_f32(uint8_t(q)));
      return t;
    }();
    return table.data();
  }
  // Codes q[0 .. kc) as pairs into d[p * stride], p < (kc + 1) / 2 (an odd end pairs with 0).
  static void pairs(const uint8_t* q, int64_t kc, uint32_t* d, int64_t stride) {
    const uint16_t* lut = bf16_of_code();
    int64_t k = 0;
    for (; k + 1 < kc; k += 2) d[(k / 2) * stride] = lut[q[k]] | uint32_t(lut[q[k + 1]]) << 16;
    if (k < kc) d[(k / 2) * stride] = lut[q[k]];
  }

  void pack_a(Trans, const float*, int64_t, int64_t i0, int64_t mr, int64_t k0, int64_t kc,
              uint32_t* dst) const {
    const int64_t kp = (kc + 1) / 2;
    for (int64_t r = 0; r < MR; ++r) {
      if (r < mr) {
        pairs(a.codes.data() + (i0 + r) * a.K + k0, kc, dst + r * kp, 1);
        dst[MR * kp + r] = std::bit_cast<uint32_t>(a.scale_at(i0 + r, k0));
      } else {
        std::memset(dst + r * kp, 0, size_t(kp) * sizeof(uint32_t));
        dst[MR * kp + r] = 0;
      }
    }
  }
  void pack_b(Trans, const float*, int64_t, int64_t k0, int64_t kc, int64_t j0, int64_t nr,
              uint32_t* dst) const {
    const int64_t kp = (kc + 1) / 2;
    for (int64_t c = 0; c < NR; ++c) {
      if (c < nr) {
        pairs(b.codes.data() + (j0 + c) * b.K + k0, kc, dst + c, NR);
        dst[kp * NR + c] = std::bit_cast<uint32_t>(b.scale_at(j0 + c, k0));
      } else {
        for (int64_t p = 0; p <= kp; ++p) dst[p * NR + c] = 0;
      }
    }
  }
  void micro_kernel(int64_t kc, const uint32_t* pa, const uint32_t* pb, float* c, int64_t ldc,
                    int64_t mr, int64_t nr, bool overwrite) const {
    const int64_t kp = (kc + 1) / 2;
    kBf16Kernels[mr - 1](pa, kp, pb, kp, c, ldc, lanes16(nr), lanes16(nr - 16),
                         reinterpret_cast<const float*>(pb + kp * NR), overwrite, pa + MR * kp);
  }
};

}  // namespace

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p) {
  if (p == Precision::BF16)
    return gemm_blocked(Bf16Tier{}, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  gemm_blocked(Tier{}, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_fp8(const Fp8Operand& a, const Fp8Operand& b, float* C, int64_t ldc, bool accumulate) {
  gemm_blocked(Fp8Tier{a, b}, Trans::No, Trans::Yes, a.rows, b.rows, a.K, nullptr, 0, nullptr, 0, C,
               ldc, accumulate);
}

}  // namespace seek::kernels::avx512
