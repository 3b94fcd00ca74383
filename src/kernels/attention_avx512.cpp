// attention_decode's blocks for AVX-512: Precision::F32 on fp32 FMAs (attention_x86.h, 16 heads
// per vector); Precision::BF16 on vdpbf16ps, which does two multiply-adds per lane per
// instruction: twice the fp32 FMA rate, and decode at depth is bound by these multiply-adds
// (16 heads · (W + dv) = 17k per 2.3 KB row for V2-Lite), not by reading the cache.
//
// vdpbf16ps sums adjacent bf16 pairs: lane h gets a[2h]·b[2h] + a[2h+1]·b[2h+1]. So both passes
// want their reduction index in pairs:
//   scores, Σ_k row[k]·q_h[k]: k pairs; qt2[kp] holds (q_h[2kp], q_h[2kp+1]) in lane h and each
//     tile row is stored as bf16 in natural order, so a broadcast dword is (row[2kp], row[2kp+1]);
//   values, Σ_j p_j[h]·row_j[c]: row pairs; each tile is also stored "pair-transposed",
//     vt[jp][c] = (row_2jp[c], row_2jp+1[c]) as a dword, and p2[jp] holds (p_2jp[h], p_2jp+1[h]).
// Both layouts are made in one pass over the tile (by row pairs), shared by every head group; that
// pass is where the rows come in from memory, so the dots of each tile prefetch the next into L2
// (measured on one Zen 4 core at depth 16k: 5.8 ms per call without it, 4.4 ms with it).
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own code (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define SEEK_SIMD_NS avx512
#define SEEK_SIMD_AVX512 1
#include "kernels/attention_x86.h"

#include <bit>

namespace seek::kernels::avx512 {
namespace {

constexpr int64_t kPairs = kTile / 2;
constexpr int RB = 16;  // rows per register block of the score pass (dot latency x rate)
constexpr int64_t kPrefetch = 1024;  // floats ahead in the cache stream (4 KB)

struct DotWork {
  std::vector<uint32_t> qt2;  // [G, Wp/2, 16]
  std::vector<uint16_t> rb;   // [kTile, Wp]: the tile in bf16, zero-padded to Wp columns
  std::vector<uint32_t> vt;   // [kPairs, dvp]: the tile pair-transposed
  std::vector<float> acc;     // [G, dvp, 16]
  std::vector<float> ml;      // [G, 2, 16]
};

inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
// p[0, n) as 16 floats, zeros past n (n may be <= 0).
inline __m512 load_part(const float* p, int64_t n) {
  return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes(n), p);
}
// Two vectors' bf16 interleaved: dword i = (bf16(lo[i]), bf16(hi[i])).
inline __m512i interleave_bf16(__m512 lo, __m512 hi) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                       8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}
// acc + the dot of the bf16 pair at `a_pair`, broadcast, with every pair of b. Written out because
// GCC does not fold the broadcast into vdpbf16ps (its m32bcst operand): a separate vpbroadcastd
// per dot took a vector slot each and halved the rate (measured on Zen 4).
inline __m512 dot2(__m512 acc, const uint32_t* a_pair, __m512i b) {
  __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(b), "m"(*a_pair));
  return acc;
}

// `next`, `next_floats`: the next tile's rows, prefetched into L2 while the dots run (null: none).
void dot_tile_step(const DecodeArgs& a, const uint32_t* qt2, const uint16_t* rb, int64_t Wp,
                   const uint32_t* vt, int64_t dvp, int64_t nt, const float* next,
                   int64_t next_floats, float* m, float* l, float* acc) {
  alignas(64) float S[kTile + 1][16];
  for (int64_t r = 0; r < nt; r += RB) {
    __m512 s[RB];
    const uint32_t* p[RB];
    SEEK_UNROLL
    for (int i = 0; i < RB; ++i)
      s[i] = _mm512_setzero_ps(), p[i] = reinterpret_cast<const uint32_t*>(rb + (r + i) * Wp);
    for (int64_t kp = 0; kp < Wp / 2; kp += 4) {
      // 8 lines per 4 steps: a tile of rows (kTile·W floats) over the tile's kTile·W/8 steps.
      const int64_t line = ((r / RB) * (Wp / 2) + kp) * 2 * kLine;
      if (next && line < next_floats)
        for (int64_t i = 0; i < 8; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(next + line + i * kLine), _MM_HINT_T1);
      SEEK_UNROLL
      for (int kk = 0; kk < 4; ++kk) {
        const __m512i qk = _mm512_loadu_si512(qt2 + (kp + kk) * 16);
        SEEK_UNROLL
        for (int i = 0; i < RB; ++i) s[i] = dot2(s[i], p[i] + kp + kk, qk);
      }
    }
    SEEK_UNROLL
    for (int i = 0; i < RB; ++i)
      if (r + i < nt) vstore(S[r + i], vmul(s[i], vset(a.scale)));
  }
  const auto [alpha, grew] = online_softmax(S, nt, m, l, false);
  vstore(S[nt], vzero());  // an odd tile's last pair
  const int64_t np = (nt + 1) / 2;
  alignas(64) uint32_t P2[kPairs][16];
  for (int64_t jp = 0; jp < np; ++jp)
    _mm512_store_si512(P2[jp], interleave_bf16(vload(S[2 * jp]), vload(S[2 * jp + 1])));
  for (int64_t c = 0; c < dvp; c += C) {
    __m512 ac[C];
    SEEK_UNROLL
    for (int i = 0; i < C; ++i) {
      ac[i] = vload(acc + (c + i) * 16);
      if (grew) ac[i] = vmul(ac[i], alpha);
    }
    for (int64_t jp = 0; jp < np; ++jp) {
      const __m512i pj = _mm512_load_si512(P2[jp]);
      const uint32_t* v = vt + jp * dvp + c;
      SEEK_UNROLL
      for (int i = 0; i < C; ++i) ac[i] = dot2(ac[i], v + i, pj);
    }
    SEEK_UNROLL
    for (int i = 0; i < C; ++i) vstore(acc + (c + i) * 16, ac[i]);
  }
}

void decode_blocks_dot(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  thread_local DotWork w;
  const int64_t G = (a.nh + 15) / 16, W = a.W, dv = a.dv;
  const int64_t Wp = (W + 31) / 32 * 32, dvp = (dv + C - 1) / C * C;
  w.qt2.assign(size_t(G * (Wp / 2) * 16), 0u);
  w.rb.resize(size_t(kTile * Wp));
  w.vt.resize(size_t(kPairs * dvp));
  w.acc.resize(size_t(G * dvp * 16));
  w.ml.resize(size_t(G * 2 * 16));
  for (int64_t h = 0; h < a.nh; ++h)
    for (int64_t k = 0; k < W; ++k)
      w.qt2[size_t(((h / 16) * (Wp / 2) + k / 2) * 16 + h % 16)] |=
          std::bit_cast<uint32_t>(vround_bf16(vset(a.q[h * a.ldq + k]))[0]) >> (16 * (1 - k % 2));
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b * kDecodeBlockRows, n = std::min(a.n - r0, kDecodeBlockRows);
    const float* rows = a.rows + r0 * a.ldr;
    std::fill(w.acc.begin(), w.acc.end(), 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      std::fill_n(w.ml.data() + g * 32, 16, -std::numeric_limits<float>::infinity());
      std::fill_n(w.ml.data() + g * 32 + 16, 16, 0.0f);
    }
    for (int64_t t0 = 0; t0 < n; t0 += kTile) {
      const int64_t nt = std::min(kTile, n - t0);
      const float* tile = rows + t0 * a.ldr;
      // The tile in bf16 twice, in one pass over it by row pairs: row-major (rb) and
      // pair-transposed (vt); an odd tile's last row pairs with zeros.
      uint16_t* const rb = w.rb.data();
      uint32_t* const vt = w.vt.data();
      for (int64_t jp = 0; jp < (nt + 1) / 2; ++jp) {
        const float* even = tile + 2 * jp * a.ldr;
        const float* odd = even + a.ldr;
        const bool has_odd = 2 * jp + 1 < nt;
        for (int64_t k = 0; k < Wp; k += 32) {
          _mm_prefetch(reinterpret_cast<const char*>(even + kPrefetch + k), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(even + kPrefetch + k + 16), _MM_HINT_T0);
          const __m512 e0 = load_part(even + k, W - k), e1 = load_part(even + k + 16, W - k - 16);
          __m512 o0 = _mm512_setzero_ps(), o1 = o0;
          if (has_odd) {
            o0 = load_part(odd + k, W - k), o1 = load_part(odd + k + 16, W - k - 16);
            _mm512_storeu_si512(rb + (2 * jp + 1) * Wp + k, (__m512i)_mm512_cvtne2ps_pbh(o1, o0));
          }
          _mm512_storeu_si512(rb + 2 * jp * Wp + k, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
          for (int64_t h = 0; h < 2; ++h) {  // values: the first dv columns, zeros to dvp
            const int64_t c = k + 16 * h;
            if (c >= dvp) break;
            const __mmask16 mk = lanes(dv - c);
            _mm512_storeu_si512(vt + jp * dvp + c,
                                interleave_bf16(_mm512_maskz_mov_ps(mk, h ? e1 : e0),
                                                _mm512_maskz_mov_ps(mk, h ? o1 : o0)));
          }
        }
      }
      // Memory and dots overlap: the conversions above find their rows in L2, prefetched by the
      // dots of the tile before (the next block's first tile, too: a thread's blocks are
      // contiguous).
      const float* next = rows + (t0 + kTile) * a.ldr;
      const int64_t next_floats = std::min(kTile, a.n - r0 - t0 - kTile) * a.ldr;
      for (int64_t g = 0; g < G; ++g)
        dot_tile_step(a, w.qt2.data() + g * (Wp / 2) * 16, rb, Wp, vt, dvp, nt,
                      g == 0 ? next : nullptr, next_floats,
                      w.ml.data() + g * 32, w.ml.data() + g * 32 + 16,
                      w.acc.data() + g * dvp * 16);
    }
    float* m = states + (b - b0) * state_floats(a.nh, dv);
    for (int64_t h = 0; h < a.nh; ++h) {
      const float* ml = w.ml.data() + (h / 16) * 32;
      m[h] = ml[h % 16];
      m[a.nh + h] = ml[16 + h % 16];
      const float* acc = w.acc.data() + (h / 16) * dvp * 16 + h % 16;
      float* out = m + 2 * a.nh + h * dv;
      for (int64_t c = 0; c < dv; ++c) out[c] = acc[c * 16];
    }
  }
}

}  // namespace

void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  if (a.p == Precision::BF16) return decode_blocks_dot(a, b0, b1, states);
  decode_blocks_fma(a, b0, b1, states);
}

}  // namespace seek::kernels::avx512
