// The vector layer of the x86 kernels, written once over the ISA's intrinsic prefix (_mm512_ or
// _mm256_) and compiled into each ISA's namespace: the including file defines SEEK_SIMD_NS
// (avx2 or avx512) and SEEK_SIMD_AVX512 (0 or 1) and its code is compiled for that ISA (isa_target.h). Every
// helper is in an anonymous namespace, so the compilations never merge at link time.
#pragma once
#include <immintrin.h>

#include "kernels/isa_target.h"

#ifndef SEEK_SIMD_NS
#error "define SEEK_SIMD_NS and SEEK_SIMD_AVX512 before including simd_x86.h"
#endif

namespace seek::kernels::SEEK_SIMD_NS {
namespace {

// What the two ISAs share, then what they do differently.
#if SEEK_SIMD_AVX512
using V = __m512;
using VI = __m512i;
constexpr int L = 16;
#define SEEK_MM(op) _mm512_##op
#else
using V = __m256;
using VI = __m256i;
constexpr int L = 8;
#define SEEK_MM(op) _mm256_##op
#endif
inline V vzero() { return SEEK_MM(setzero_ps)(); }
inline V vset(float x) { return SEEK_MM(set1_ps)(x); }
inline V vload(const float* p) { return SEEK_MM(loadu_ps)(p); }
inline void vstore(float* p, V v) { SEEK_MM(storeu_ps)(p, v); }
inline V vfma(V a, V b, V c) { return SEEK_MM(fmadd_ps)(a, b, c); }
inline V vmul(V a, V b) { return SEEK_MM(mul_ps)(a, b); }
inline V vadd(V a, V b) { return SEEK_MM(add_ps)(a, b); }
inline V vsub(V a, V b) { return SEEK_MM(sub_ps)(a, b); }
inline V vmax(V a, V b) { return SEEK_MM(max_ps)(a, b); }
inline VI iadd(VI a, VI b) { return SEEK_MM(add_epi32)(a, b); }
inline VI isrl(VI a, int n) { return SEEK_MM(srli_epi32)(a, n); }
inline VI iset(int v) { return SEEK_MM(set1_epi32)(v); }
#undef SEEK_MM
#if SEEK_SIMD_AVX512
inline bool any_gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0; }
inline V vround(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline V vscale2(V p, V n) { return _mm512_scalef_ps(p, n); }  // p·2^n, 0 on underflow
inline VI vbits(V x) { return _mm512_castps_si512(x); }
inline V vfloat(VI x) { return _mm512_castsi512_ps(x); }
inline VI iand(VI a, VI b) { return _mm512_and_si512(a, b); }
#else
inline bool any_gt(V a, V b) { return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0; }
inline V vround(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VI vbits(V x) { return _mm256_castps_si256(x); }
inline V vfloat(VI x) { return _mm256_castsi256_ps(x); }
inline VI iand(VI a, VI b) { return _mm256_and_si256(a, b); }
// p·2^n for integral n >= -126 (vexp's clamp keeps it there), through the exponent field.
inline V vscale2(V p, V n) {
  const VI e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), iset(127)), 23);
  return vmul(p, vfloat(e));
}
#endif

// e^x for x <= 0 (softmax arguments, -inf included): x = n·ln2 + r with n integral and
// |r| <= ln2/2, e^r by its Taylor polynomial to degree 7 (truncation < 6e-9 relative, below
// fp32's half ulp), times 2^n. Below the clamp e^x is under fp32's normal range and taken as 0
// (the clamp also keeps -inf from becoming inf - inf).
inline V vexp(V x) {
  constexpr float kMin = -87.0f;
  const V xc = vmax(x, vset(kMin));
  const V n = vround(vmul(xc, vset(1.44269504f)));  // log2(e)
  V r = vfma(n, vset(-0.693359375f), xc);            // ln2 in two parts: n·hi is exact
  r = vfma(n, vset(2.12194440e-4f), r);
  V p = vset(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = vfma(p, r, vset(c));
  const V e = vscale2(p, n);
#if SEEK_SIMD_AVX512
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, vset(kMin), _CMP_GE_OQ), e);
#else
  return _mm256_and_ps(e, _mm256_cmp_ps(x, vset(kMin), _CMP_GE_OQ));
#endif
}

// vexp, with NaN passed through (elementwise ops must not hide a NaN).
inline V vexp_nan(V x) {
#if SEEK_SIMD_AVX512
  return _mm512_mask_mov_ps(vexp(x), _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
#else
  return _mm256_blendv_ps(vexp(x), x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
#endif
}

// Round to nearest even bf16, kept as fp32 (finite inputs).
inline V vround_bf16(V x) {
  auto b = vbits(x);
  b = iadd(b, iadd(iset(0x7fff), iand(isrl(b, 16), iset(1))));
  return vfloat(iand(b, iset(int(0xffff0000u))));
}

// L bf16 values widened (exactly) to fp32.
inline V vload_bf16(const uint16_t* p) {
#if SEEK_SIMD_AVX512
  return vfloat(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
#else
  return vfloat(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
#endif
}

}  // namespace
}  // namespace seek::kernels::SEEK_SIMD_NS
