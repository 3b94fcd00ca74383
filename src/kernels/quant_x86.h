// x86 helpers shared by the block-quantized matmul kernels (matmul_quant_x86.h's GEMV, compiled
// for AVX2 and AVX-512, and matmul_quant_gemm_avx512.cpp). Everything is in an anonymous
// namespace: each translation unit gets its own copy, compiled for its own ISA, so the linker
// never merges an AVX-512 build of a helper into the AVX2 kernels.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/isa_target.h"

namespace seek::kernels {
namespace {

// block_q4_K's 12 bytes of 6-bit scales and mins (see q4k_scale_min) as bytes 0..7 = sc_0..7,
// 8..15 = m_0..7, unpacked four at a time in the 32-bit lanes of one vector. Reads 16 bytes at s
// (the 4 after the scales are the block's first nibbles).
inline __m128i q4k_scales_mins(const uint8_t* s) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));  // words s0 s1 s2 -
  // Lanes: [sc_0..3, sc_4..7, m_0..3, m_4..7]. Low bits: s0 & 63, s2 & 15, s1 & 63, s2 >> 4 & 15.
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_set_epi32(4, 0, 0, 0)),
      _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
  // Top two bits of sub-blocks 4..7: the spare bits 6, 7 of s0 (scales) and s1 (mins).
  const __m128i top = _mm_slli_epi32(
      _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 6),
                    _mm_set_epi32(0x03030303, 0, 0x03030303, 0)),
      4);
  return _mm_or_si128(low, top);
}

// Q6_K's 6-bit codes (0..63) of 128 elements, 32 per vector in element order: the low nibbles
// of ql bytes 0..31 and 32..63, then their high nibbles, each with its 2 bits from qh.
inline void q6k_codes(__m256i ql0, __m256i ql1, __m256i qh, __m256i (&u)[4]) {
  const __m256i low4 = _mm256_set1_epi8(0xF), bits45 = _mm256_set1_epi8(0x30);
  u[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                         _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
  u[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                         _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
  u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                         _mm256_and_si256(qh, bits45));
  u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
}

}  // namespace
}  // namespace seek::kernels
