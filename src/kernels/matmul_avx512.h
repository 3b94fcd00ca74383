// AVX-512 building blocks shared by matmul_avx512.cpp (GEMV, matmul_t) and
// matmul_gemm_avx512.cpp (packed GEMM). Include only from *_avx512.cpp files: everything here
// is compiled for AVX-512 (isa_target.h).
#pragma once
// GCC 12's AVX-512 headers seed some intrinsics with `__m512 __Y = __Y;` and then warn about it
// under -W(maybe-)uninitialized (GCC PR 105593, fixed in 12.3/13); silence only that.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <bit>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/isa_target.h"

namespace seek::kernels::avx512 {

// ---- FP8 E4M3 -> fp32 in three integer ops ----------------------------------------------------
// An e4m3 byte is s.eeee.mmm (bias 7). Sign-extending it to 32 bits and shifting left by 20
// puts s at bit 31 and eeee.mmm at bits 26..20, i.e. in the low 4 bits of the fp32 exponent and
// the top 3 mantissa bits; the sign extension also leaves copies of s at bits 30..27, which the
// mask clears. The result is the fp32 with the same sign, mantissa and exponent field, only read
// with bias 127: exactly q·2^-120 — and for e = 0 (e4m3 subnormals m/8·2^-6) the fp32 subnormal
// m/8·2^-126, which is q·2^-120 again. No table, no special case: vpmovsxbd, vpslld, vpandd.
// (Measured on Zen 4 against the f16 route — (sx(b) << 7) & 0xbf80, vcvtph2ps, ×2^8 — and a
// lookup through two vpermt2ps + blend: 1.3x and 1.1x faster. The NaN codes 0x7f/0xff become
// finite 480·2^-120; checkpoints never contain them.) Callers fold the 2^120 into something
// else: the GEMV into its activations (matmul_avx512.cpp); packing multiplies by kFp8Up (exact).
inline constexpr float kFp8Up = 0x1p120f;
inline __m512 fp8_lowered(__m128i bytes) {
  const __m512i v = _mm512_slli_epi32(_mm512_cvtepi8_epi32(bytes), 20);
  return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0x87F00000u))));
}
// Exact q for 16 codes (used where the conversion is amortised: packing, matmul_t).
inline __m512 fp8_exact(__m128i bytes) {
  return _mm512_mul_ps(fp8_lowered(bytes), _mm512_set1_ps(kFp8Up));
}

// FP8 codes to bf16 through a table. e4m3 values are exact in bf16 (3 mantissa bits, exponents
// 2^-9..2^8), and vpermt2b looks up 128 byte entries by the low 7 bits of each of 64 bytes, so
// the high and the low byte of bf16(|q|) cost one lookup each per 64 codes, subnormals included;
// the code's sign bit is bit 7 of the high byte already. (The fp32 route, widen + shift + mask +
// x2^120 per 16 codes and a rounding convert per 32, made packing ~25% of FP8 prefill time.)
struct Fp8Bf16Table {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
};
constexpr uint16_t fp8_magnitude_bf16(int code) {  // bf16 bits of |e4m3 code|, code < 128
  const int e = code >> 3, m = code & 7;
  if (code == 0x7F) return 0x7FC0;  // the NaN code
  if (e > 0) return uint16_t((e + 120) << 7 | m << 4);
  if (m == 0) return 0;
  const int top = m >= 4 ? 2 : m >= 2 ? 1 : 0;  // m/8 · 2^-6 = 2^(top-9) · (m / 2^top)
  return uint16_t((118 + top) << 7 | (m - (1 << top)) << (7 - top));
}
constexpr Fp8Bf16Table make_fp8_bf16_table() {
  Fp8Bf16Table t{};
  for (int c = 0; c < 128; ++c) {
    t.hi[c] = uint8_t(fp8_magnitude_bf16(c) >> 8);
    t.lo[c] = uint8_t(fp8_magnitude_bf16(c) & 0xFF);
  }
  return t;
}
inline constexpr Fp8Bf16Table kFp8Bf16 = make_fp8_bf16_table();

// 64 codes -> 32 bf16 pairs in two vectors. unpacklo/hi work within 128-bit lanes, so dword
// 4j + t of `lo` is pair 8j + t and of `hi` pair 8j + 4 + t (j, t = 0..3).
inline void fp8x64_to_bf16_pairs(__m512i q, __m512i& lo, __m512i& hi) {
  const __m512i* t = reinterpret_cast<const __m512i*>(&kFp8Bf16);
  const __m512i h = _mm512_ternarylogic_epi32(  // table high byte | (q & 0x80)
      _mm512_permutex2var_epi8(_mm512_load_si512(t), q, _mm512_load_si512(t + 1)), q,
      _mm512_set1_epi8(char(0x80)), 0xF8);
  const __m512i l = _mm512_permutex2var_epi8(_mm512_load_si512(t + 2), q, _mm512_load_si512(t + 3));
  lo = _mm512_unpacklo_epi8(l, h);
  hi = _mm512_unpackhi_epi8(l, h);
}
// Mask of the first n lanes (n clamped to 0..16 / 0..32).
inline __mmask16 lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 lanes32(int64_t n) {
  return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
}

// 16 consecutive weights of one row from column `k` as fp32, lanes outside `mask` zero.
// F32/BF16/F16 are exact; FP8 gives exact q (no block scale). Always a masked load: it never
// touches memory past the last valid element (the last row of a tensor can be read without
// overrun), costs the same as a plain load, and keeps hot loops free of branches — a branch on
// the tail inside the loop made GCC keep the accumulators on the stack.
template <DType DT>
inline __m512 load16(const void* row, int64_t k, __mmask16 mask) {
  if constexpr (DT == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(row) + k);
  } else if constexpr (DT == DType::F8_E4M3) {
    return fp8_exact(_mm_maskz_loadu_epi8(mask, static_cast<const uint8_t*>(row) + k));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(row) + k);
    if constexpr (DT == DType::F16) return _mm512_cvtph_ps(h);
    // bf16 is the top half of an fp32: widen and shift, no rounding involved.
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// ---- 16x16 transpose of 32-bit elements, in registers -----------------------------------------
// Packing turns 16 weight rows (one vector each) into 16 vectors along k; this is the standard
// unpack-32 / unpack-64 / 128-bit-lane shuffle sequence (48 shuffles for 256 elements).
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + j], lane L: rows 4g..4g+3 of column 4L + j.
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  // A 4x4 transpose of 128-bit lanes across r[j], r[4+j], r[8+j], r[12+j] finishes column j.
  for (int j = 0; j < 4; ++j) {
    const __m512i u0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44);
    const __m512i u1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
    const __m512i u2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i u3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
    t[0 + j] = _mm512_shuffle_i32x4(u0, u2, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(u0, u2, 0xDD);
    t[8 + j] = _mm512_shuffle_i32x4(u1, u3, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(u1, u3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

inline constexpr int kGemmMR = 12;  // activation rows per micro-tile (24 accumulators)
inline constexpr int kGemmNR = 32;  // weight rows per panel (two zmm)

// ---- GEMM micro-kernels (the prefill GEMM, matmul_gemm_avx512.cpp, and the training GEMM's
// bf16 tier, gemm_train_avx512.cpp) ----------------------------------------------------------------------------

// The output tile is read back only after thousands of cycles of dot products, and across a
// whole row of tiles it does not fit in L2: asking for it up front hides an L3/DRAM round trip
// per tile (worth ~5% at K blocks of 512).
template <int MR>
inline void prefetch_tile(const float* c, int64_t ldc) {
  _Pragma("GCC unroll 16")
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
}

// C[MR, 32] (+)= A[MR, kc] · B[kc, 32], B packed [kc][32] fp32; m0/m1 mask valid columns.
template <int MR>
void ukernel_f32(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                 __mmask16 m0, __mmask16 m1, bool first) {
  __m512 acc[MR][2];
  _Pragma("GCC unroll 16")
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  if (!first) prefetch_tile<MR>(c, ldc);
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * kGemmNR), b1 = _mm512_load_ps(b + k * kGemmNR + 16);
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + k]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  _Pragma("GCC unroll 16")
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (!first) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
    _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
  }
}

// C[MR, 32] (+)= (A[MR, 2kp] · B[2kp, 32]) · scale, with A as bf16 pairs (one uint32 per
// (k, k+1)) and B packed [kp][32] pairs. `scale` (32 floats, FP8 only) multiplies the block's
// sum per column; `row_scale` (MR fp32 bit patterns: they live in a packed uint32 panel; the FP8
// training GEMM) also per row.
template <int MR>
void ukernel_bf16(const uint32_t* a, int64_t lda, const uint32_t* b, int64_t kp, float* c,
                  int64_t ldc, __mmask16 m0, __mmask16 m1, const float* scale, bool first,
                  const uint32_t* row_scale = nullptr) {
  __m512 acc[MR][2];
  _Pragma("GCC unroll 16")
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  if (!first) prefetch_tile<MR>(c, ldc);
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b + p * kGemmNR);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + p * kGemmNR + 16);
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[i * lda + p]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
    }
  }
  const __m512 s0 = scale ? _mm512_load_ps(scale) : _mm512_set1_ps(1.0f);
  const __m512 s1 = scale ? _mm512_load_ps(scale + 16) : _mm512_set1_ps(1.0f);
  _Pragma("GCC unroll 16")
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    const __m512 c0 = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, ci);
    const __m512 c1 = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, ci + 16);
    __m512 t0 = s0, t1 = s1;
    if (row_scale) {
      const __m512 r = _mm512_set1_ps(std::bit_cast<float>(row_scale[i]));
      t0 = _mm512_mul_ps(s0, r);
      t1 = _mm512_mul_ps(s1, r);
    }
    _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(acc[i][0], t0, c0));
    _mm512_mask_storeu_ps(ci + 16, m1, _mm512_fmadd_ps(acc[i][1], t1, c1));
  }
}

// Tails of M use the same kernels with fewer rows (index = rows - 1).
inline constexpr decltype(&ukernel_f32<1>) kF32Kernels[kGemmMR] = {
    ukernel_f32<1>, ukernel_f32<2>,  ukernel_f32<3>,  ukernel_f32<4>,
    ukernel_f32<5>, ukernel_f32<6>,  ukernel_f32<7>,  ukernel_f32<8>,
    ukernel_f32<9>, ukernel_f32<10>, ukernel_f32<11>, ukernel_f32<12>};
inline constexpr decltype(&ukernel_bf16<1>) kBf16Kernels[kGemmMR] = {
    ukernel_bf16<1>, ukernel_bf16<2>, ukernel_bf16<3>,  ukernel_bf16<4>,
    ukernel_bf16<5>, ukernel_bf16<6>, ukernel_bf16<7>,  ukernel_bf16<8>,
    ukernel_bf16<9>, ukernel_bf16<10>, ukernel_bf16<11>, ukernel_bf16<12>};

}  // namespace seek::kernels::avx512
