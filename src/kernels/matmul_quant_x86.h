// The x86 kernels of matmul against block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K), compiled
// twice: into avx2:: (matmul_quant_avx2.cpp: 256-bit vectors, maddubs + madd integer dots) and
// into avx512:: (matmul_quant_avx512.cpp: VNNI turns each maddubs+madd+add into one vpdpbusd or
// vpdpwssd, and Q8_0, Q4_0 and Q4_K run on 512-bit vectors; Q6_K's bit surgery stays 256-bit).
// The including file defines SEEK_QUANT_NS (the namespace) and SEEK_QUANT_VNNI (0 or 1); every
// helper is in an anonymous namespace, so the two compilations never merge at link time.
//
// The math is quant_dot's (kernels/quant.h), exactly: each weight block's integer sum of codes
// times quantized activations is computed exactly in int16/int32 lanes (no lane can saturate:
// maddubs pairs are at most 2·63·127 < 2^15, or 2·128·127 with the sign trick below), and only
// the per-block float scaling differs from quant_dot, in the order of the fp32 adds.
//
// Shape: each weight row is streamed once per group of up to 4 activation rows; a group of rows
// reuses every unpacked weight block from registers. Decode (M <= 8) is then one pass over the
// weights. More rows on AVX-512 go to the repacked VNNI GEMM (matmul_quant_gemm_avx512.cpp); on
// AVX2 they walk tiles of 16 weight rows (L1/L2 resident) under all groups of x rows, so a weight
// block is fetched from memory once and unpacked once per 4 rows of x.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul_internal.h"
#include "kernels/quant.h"
#include "kernels/quant_x86.h"

#ifndef SEEK_QUANT_NS
#error "define SEEK_QUANT_NS and SEEK_QUANT_VNNI before including matmul_quant_x86.h"
#endif

namespace seek::kernels::SEEK_QUANT_NS {
namespace {

constexpr int kMaxRows = 4;      // activation rows sharing one pass over a weight row
constexpr int64_t kTileRows = 16;  // weight rows kept in cache while every group of x rows passes
// Software prefetch distance in the weight stream. The hardware prefetcher alone keeps too few
// lines in flight for a kernel that spends a few cycles on every 64 bytes: one thread's decode
// from DRAM measured ~50% of the read bandwidth without prefetch, ~55-75% at 512-1024 bytes
// ahead, 80-90% at 4 KB (Sapphire Rapids VM).
constexpr int64_t kPrefetchBytes = 4096;

inline void prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
}

// acc + per int32 lane the sum of 4 adjacent u8 · s8 products.
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if SEEK_QUANT_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s),
                                                 _mm256_set1_epi16(1)));
#endif
}

// acc + per int32 lane the sum of 2 adjacent s16 · s16 products.
inline __m256i dot_s16(__m256i acc, __m256i a, __m256i b) {
#if SEEK_QUANT_VNNI
  return _mm256_dpwssd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The activation rows a kernel call reads: R rows of quantized x, at block `b0` onwards.
struct Acts {
  const int8_t* q[kMaxRows];
  const float* d[kMaxRows];
  const int16_t* s16[kMaxRows];
};

// Q8_0 and Q4_0 as signed codes w in [-128, 127]: Σ w·x = Σ |w| · (x·sign w), an unsigned times
// signed product (the sign trick), so one u8·s8 dot serves. Two accumulators per row hide the
// FMA latency when one block is all there is per step.
template <int R, bool kQ4>
void dot_32(const uint8_t* w, int64_t nb, const Acts& x, float* out) {
  constexpr int64_t bytes = kQ4 ? 18 : 34;
  __m256 acc0[R], acc1[R];
  SEEK_UNROLL for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  auto block = [&](int64_t i, __m256* acc) __attribute__((always_inline)) {
    const uint8_t* b = w + i * bytes;
    __m256i q;
    if constexpr (kQ4) {  // 16 bytes: elements 0..15 in the low nibbles, 16..31 in the high
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
      const __m256i n = _mm256_and_si256(
          _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0xF));
      q = _mm256_sub_epi8(n, _mm256_set1_epi8(8));
    } else {
      q = loadu(b + 2);
    }
    const __m256i aq = _mm256_sign_epi8(q, q);
    const float d = f16(b);
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      const __m256i xv = loadu(x.q[r] + 32 * i);
      const __m256i p = dot_u8s8(_mm256_setzero_si256(), aq, _mm256_sign_epi8(xv, q));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * x.d[r][i]), acc[r]);
    }
  };
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    // A pair of blocks is 68 or 36 bytes: one or two prefetches touch every line once or twice.
    prefetch(w + i * bytes);
    if constexpr (!kQ4) prefetch(w + i * bytes + 64);
    block(i, acc0);
    block(i + 1, acc1);
  }
  if (i < nb) block(i, acc0);
  SEEK_UNROLL for (int r = 0; r < R; ++r) out[r] = hsum(_mm256_add_ps(acc0[r], acc1[r]));
}

#if SEEK_QUANT_VNNI
// Q8_0 and Q4_0 on 512-bit vectors (AVX-512 only), two blocks per vector (lanes 0..7 the first,
// 8..15 the second). AVX-512 has no vpsignb: |w| is vpabsb and x takes w's sign by a masked
// negate under w's sign bits. An odd last block goes through the 256-bit step.
template <int R, bool kQ4>
void dot_32_512(const uint8_t* w, int64_t nb, const Acts& x, float* out) {
  constexpr int64_t bytes = kQ4 ? 18 : 34;
  auto codes = [](const uint8_t* b) {  // one block's signed codes
    if constexpr (kQ4) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
      const __m256i n = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
                                         _mm256_set1_epi8(0xF));
      return _mm256_sub_epi8(n, _mm256_set1_epi8(8));
    } else {
      return loadu(b + 2);
    }
  };
  const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[R];
  SEEK_UNROLL for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    const uint8_t* b = w + i * bytes;
    prefetch(b);
    if constexpr (!kQ4) prefetch(b + 64);
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(codes(b)), codes(b + bytes), 1);
    const __m512i aq = _mm512_abs_epi8(q);
    const __mmask64 neg = _mm512_movepi8_mask(q);
    uint16_t h0, h1;
    std::memcpy(&h0, b, 2);
    std::memcpy(&h1, b + bytes, 2);
    const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(int(h0 | uint32_t(h1) << 16)));
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      const __m512i xv = _mm512_loadu_si512(x.q[r] + 32 * i);
      const __m512i sx = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq, sx);
      double dx2;  // d_x of blocks i, i + 1
      std::memcpy(&dx2, x.d[r] + i, 8);
      const __m128 s = _mm_mul_ps(dw, _mm_castpd_ps(_mm_set_sd(dx2)));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                               _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(s)), acc[r]);
    }
  }
  float tail[R] = {};
  if (i < nb) {
    Acts xt = x;
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      xt.q[r] = x.q[r] + 32 * i;
      xt.d[r] = x.d[r] + i;
    }
    dot_32<R, kQ4>(w + i * bytes, 1, xt, tail);
  }
  SEEK_UNROLL for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}
#endif

// A Q4_K superblock's header, its 144 bytes prefetched: the 6-bit scales (bytes 0..7) and mins
// (8..15) unpacked to bytes, the mins widened to int16 pairs (m_0 m_0 m_1 m_1 ..), d and dmin.
struct Q4kHead {
  __m128i scm;
  __m256i mins;
  float d, dmin;
};
inline Q4kHead q4k_head(const uint8_t* w) {
  prefetch(w);
  prefetch(w + 64);
  prefetch(w + 128);
  const __m128i scm = q4k_scales_mins(w + 4);
  return {scm, _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm)), f16(w), f16(w + 2)};
}

// Q4_K: per superblock, Σ_j sc_j · (maddubs of nibbles and x) in int32 lanes, one FMA by d·d_x;
// the mins term Σ_j m_j · (Σ x over sub-block j) from the activation's 16-sums, one FMA by dmin·d_x.
template <int R>
void dot_q4_K(const uint8_t* w, int64_t nb, const Acts& x, float* out) {
  const __m256i low4 = _mm256_set1_epi8(0xF);
  __m256 acc[R];
  SEEK_UNROLL for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += 144) {
    const auto [scm, mins, d, dmin] = q4k_head(w);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
    __m256i isum[R];
    SEEK_UNROLL for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    SEEK_UNROLL for (int c = 0; c < 4; ++c) {  // 64 elements: sub-blocks 2c (low), 2c+1 (high)
      const __m256i qv = loadu(w + 16 + 32 * c);
      const __m256i lo = _mm256_and_si256(qv, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), low4);
      const __m256i s_lo = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(short(0x0100 * (4 * c + 1) + 4 * c)));
      const __m256i s_hi = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(short(0x0100 * (4 * c + 3) + 4 * c + 2)));
      SEEK_UNROLL for (int r = 0; r < R; ++r) {
        const int8_t* xq = x.q[r] + 256 * i + 64 * c;
        isum[r] = dot_s16(isum[r], _mm256_maddubs_epi16(lo, loadu(xq)), s_lo);
        isum[r] = dot_s16(isum[r], _mm256_maddubs_epi16(hi, loadu(xq + 32)), s_hi);
      }
    }
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      const float dx = x.d[r][i];
      const __m256i imin = _mm256_madd_epi16(mins, loadu(x.s16[r] + 16 * i));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(d * dx), acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_set1_ps(dmin * dx), acc[r]);
    }
  }
  SEEK_UNROLL for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

#if SEEK_QUANT_VNNI
// Q4_K on 512-bit vectors (AVX-512 only): a 64-byte load of nibbles holds sub-blocks 4h and 4h+2
// in its low nibbles and 4h+1, 4h+3 in its high ones, so the activations are read in that order:
// `x.q` is in q4k_order (per 128 elements: [0,32) [64,96) [32,64) [96,128)), made once per call.
// Half the instructions of the 256-bit kernel per superblock for the nibbles and dots.
template <int R>
void dot_q4_K_512(const uint8_t* w, int64_t nb, const Acts& x, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0xF);
  // Scale lanes: sub-block a in int16 lanes 0..15 (the first 32 bytes), b in lanes 16..31.
  auto pick = [](int a, int b) {
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set1_epi16(short(0x0100 * (2 * a + 1) + 2 * a))),
        _mm256_set1_epi16(short(0x0100 * (2 * b + 1) + 2 * b)), 1);
  };
  const __m512i pick_lo[2] = {pick(0, 2), pick(4, 6)}, pick_hi[2] = {pick(1, 3), pick(5, 7)};
  __m512 acc[R];
  __m256 acc_min[R];
  SEEK_UNROLL for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    acc_min[r] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < nb; ++i, w += 144) {
    const auto [scm, mins, d, dmin] = q4k_head(w);
    const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(scm));
    __m512i isum[R];
    SEEK_UNROLL for (int r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
    SEEK_UNROLL for (int h = 0; h < 2; ++h) {
      const __m512i qv = _mm512_loadu_si512(w + 16 + 64 * h);
      const __m512i lo = _mm512_and_si512(qv, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(qv, 4), low4);
      const __m512i s_lo = _mm512_shuffle_epi8(sc16, pick_lo[h]);
      const __m512i s_hi = _mm512_shuffle_epi8(sc16, pick_hi[h]);
      SEEK_UNROLL for (int r = 0; r < R; ++r) {
        const int8_t* xq = x.q[r] + 256 * i + 128 * h;
        isum[r] = _mm512_dpwssd_epi32(isum[r], _mm512_maddubs_epi16(lo, _mm512_loadu_si512(xq)),
                                      s_lo);
        isum[r] = _mm512_dpwssd_epi32(
            isum[r], _mm512_maddubs_epi16(hi, _mm512_loadu_si512(xq + 64)), s_hi);
      }
    }
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      const float dx = x.d[r][i];
      const __m256i imin = _mm256_madd_epi16(mins, loadu(x.s16[r] + 16 * i));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(d * dx), acc[r]);
      acc_min[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_set1_ps(dmin * dx), acc_min[r]);
    }
  }
  SEEK_UNROLL for (int r = 0; r < R; ++r)
    out[r] = _mm512_reduce_add_ps(acc[r]) - hsum(acc_min[r]);
}
#endif

// Q6_K: the 6-bit codes q (0..63) are rebuilt 32 at a time from ql nibbles and qh bit pairs; per
// 32 elements maddubs(q, x) is weighted by the two 16-element scales; the -32 offset is
// 32 · Σ_j sc_j · (Σ x over sub-block j), subtracted in int32 before the one FMA by d·d_x.
template <int R>
void dot_q6_K(const uint8_t* w, int64_t nb, const Acts& x, float* out) {
  // Group g of 32 elements uses scales 2g (its first 16) and 2g + 1: shuffle masks picking int16
  // lanes 2k and 2k + 1 (k = 2g mod 8) into the low and high 128-bit halves.
  __m256i smask[4];
  for (int k = 0; k < 4; ++k)
    smask[k] = _mm256_set_m128i(_mm_set1_epi16(short(0x0100 * (4 * k + 3) + 4 * k + 2)),
                                _mm_set1_epi16(short(0x0100 * (4 * k + 1) + 4 * k)));
  __m256 acc[R];
  SEEK_UNROLL for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += 210) {
    prefetch(w);
    prefetch(w + 64);
    prefetch(w + 128);
    prefetch(w + 192);
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                _mm256_permute2x128_si256(sc16, sc16, 0x11)};
    const float d = f16(w + 208);
    __m256i isum[R];
    SEEK_UNROLL for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    SEEK_UNROLL for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = loadu(w + 64 * h), ql1 = loadu(w + 64 * h + 32);
      const __m256i qh = loadu(w + 128 + 32 * h);
      __m256i u[4];
      q6k_codes(ql0, ql1, qh, u);
      SEEK_UNROLL for (int g = 0; g < 4; ++g) {
        const __m256i sv = _mm256_shuffle_epi8(sc_half[h], smask[g]);
        SEEK_UNROLL for (int r = 0; r < R; ++r) {
          const __m256i xv = loadu(x.q[r] + 256 * i + 128 * h + 32 * g);
          isum[r] = dot_s16(isum[r], _mm256_maddubs_epi16(u[g], xv), sv);
        }
      }
    }
    SEEK_UNROLL for (int r = 0; r < R; ++r) {
      const __m256i off = _mm256_madd_epi16(sc16, loadu(x.s16[r] + 16 * i));
      const __m256i v = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(off, 5));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(d * x.d[r][i]), acc[r]);
    }
  }
  SEEK_UNROLL for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

using DotFn = void (*)(const uint8_t*, int64_t, const Acts&, float*);

template <int R>
DotFn dot_for(DType t) {
  switch (t) {
#if SEEK_QUANT_VNNI
    case DType::Q8_0: return dot_32_512<R, false>;
    case DType::Q4_0: return dot_32_512<R, true>;
#else
    case DType::Q8_0: return dot_32<R, false>;
    case DType::Q4_0: return dot_32<R, true>;
#endif
#if SEEK_QUANT_VNNI
    case DType::Q4_K: return dot_q4_K_512<R>;
#else
    case DType::Q4_K: return dot_q4_K<R>;
#endif
    case DType::Q6_K: return dot_q6_K<R>;
    default: return nullptr;
  }
}

}  // namespace

void matmul_quant(const QuantizedActs& a, const WeightView& w, float* y, int64_t ldy) {
#if SEEK_QUANT_VNNI
  // Up to kExactRows rows stay on the GEMV, whose rows round alike at every M.
  if (a.M > std::max(quant_gemv_max_rows(w.dtype), kExactRows)) return gemm_quant(a, w, y, ldy);
#endif
  const int64_t M = a.M, N = w.rows, K = w.cols;
  const int64_t row_bytes = dtype_bytes(w.dtype, w.ld), nb = K / dtype_block(w.dtype);
  const DotFn fns[kMaxRows] = {dot_for<1>(w.dtype), dot_for<2>(w.dtype), dot_for<3>(w.dtype),
                               dot_for<4>(w.dtype)};
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const int8_t* xq = a.q.data();
#if SEEK_QUANT_VNNI
  thread_local Scratch perm;
  if (w.dtype == DType::Q4_K) {  // dot_q4_K_512 reads x in q4k_order
    int8_t* p = perm.get<int8_t>(size_t(M * K));
    for (int64_t c = 0; c < M * K; c += 128)
      for (int part = 0; part < 4; ++part)  // [0,32) [64,96) [32,64) [96,128)
        std::memcpy(p + c + 32 * part, xq + c + 32 * ((part & 1) * 2 + (part >> 1)), 32);
    xq = p;
  }
#endif
  parallel_run(threads_for(M * N * K, N * dtype_bytes(w.dtype, K)), [&](int t, int nt) {
    const auto [n0, n1] = split_range(N, t, nt, 8);
    for (int64_t tile = n0; tile < n1; tile += kTileRows) {
      const int64_t tile_end = std::min(n1, tile + kTileRows);
      for (int64_t m0 = 0; m0 < M; m0 += kMaxRows) {
        const int R = int(std::min<int64_t>(kMaxRows, M - m0));
        Acts x;
        for (int r = 0; r < R; ++r) {
          x.q[r] = xq + (m0 + r) * K;
          x.d[r] = a.d_row(m0 + r);
          x.s16[r] = a.sum16_row(m0 + r);
        }
        float out[kMaxRows];
        for (int64_t n = tile; n < tile_end; ++n) {
          fns[R - 1](base + n * row_bytes, nb, x, out);
          for (int r = 0; r < R; ++r) y[(m0 + r) * ldy + n] = out[r];
        }
      }
    }
  });
}

}  // namespace seek::kernels::SEEK_QUANT_NS
