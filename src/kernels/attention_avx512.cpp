// attention_decode's blocks for AVX-512: F32 rows on fp32 FMAs (attention_x86.h, 16 heads per
// vector); BF16 rows on vdpbf16ps, which does two multiply-adds per lane per instruction: twice
// the fp32 FMA rate, and decode at depth is bound by these multiply-adds (16 heads · (W + dv) =
// 17k per 1.2 KB row for V2-Lite), not by reading the cache.
//
// vdpbf16ps sums adjacent bf16 pairs: lane h gets a[2h]·b[2h] + a[2h+1]·b[2h+1]. So both passes
// want their reduction index in pairs:
//   scores, Σ_k row[k]·q_h[k]: k pairs; qt2[kp] holds (q_h[2kp], q_h[2kp+1]) in lane h, and a
//     cache row is bf16 in natural order, so a broadcast dword of it is (row[2kp], row[2kp+1]):
//     the score pass reads the rows where they are, streaming them from memory once;
//   values, Σ_j p_j[h]·row_j[c]: row pairs; each tile is stored "pair-transposed",
//     vt[jp][c] = (row_2jp[c], row_2jp+1[c]) as a dword, and p2[jp] holds (p_2jp[h], p_2jp+1[h]).
// A block takes two passes (attention.h's weights are rounded relative to the block's max): every
// row's scores for every head group, the block's max, exponentials and bf16 weights, then tile by
// tile the transposition and the weighted sums, rereading the block's rows from L2 (512 rows of
// 1.2 KB for V2-Lite).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <bit>

#define SEEK_SIMD_NS avx512
#define SEEK_SIMD_AVX512 1
#include "kernels/attention_x86.h"

namespace seek::kernels::avx512 {
namespace {

constexpr int64_t kPairs = kTile / 2;
constexpr int RB = 16;  // rows per register block of the score pass (dot latency x rate)
constexpr int64_t kSRows = kDecodeBlockRows + RB;  // score rows per head group (an odd block's pad)

struct DotWork {
  std::vector<uint32_t> qt2;  // [G, Wq/2, 16]
  std::vector<uint16_t> rb;   // [kDecodeBlockRows, Wq]: the block's rows, zero-padded (when copied)
  std::vector<uint16_t> zero;  // [Wq]: stands in for rows past the end of a block
  std::vector<float> S;       // [G, kSRows, 16]: scores, then weights
  std::vector<uint32_t> p2;   // [G, kDecodeBlockRows / 2, 16]: weights in bf16 pairs
  std::vector<uint32_t> vt;   // [kPairs, dvp]: one tile pair-transposed
  std::vector<float> acc;     // [G, dvp, 16]
  std::vector<float> ml;      // [G, 2, 16]
};

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

void decode_blocks_dot(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  thread_local DotWork w;
  const int64_t G = (a.nh + 15) / 16, W = a.W, dv = a.dv;
  const int64_t Wq = (W + 7) / 8 * 8, dvp = (dv + 31) / 32 * 32;
  // Rows are read in place when their pairs are whole dwords, else copied a block at a time.
  const bool direct = Wq == W && a.ldr % 2 == 0 && reinterpret_cast<uintptr_t>(a.rows16) % 4 == 0;
  w.qt2.assign(size_t(G * (Wq / 2) * 16), 0u);
  if (!direct) w.rb.assign(size_t(kDecodeBlockRows * Wq), 0);
  w.zero.assign(size_t(Wq), 0);
  w.S.resize(size_t(G * kSRows * 16));
  w.p2.resize(size_t(G * (kDecodeBlockRows / 2) * 16));
  w.vt.resize(size_t(kPairs * dvp));
  w.acc.resize(size_t(G * dvp * 16));
  w.ml.resize(size_t(G * 32));
  for (int64_t h = 0; h < a.nh; ++h)
    for (int64_t k = 0; k < W; ++k)
      w.qt2[size_t(((h / 16) * (Wq / 2) + k / 2) * 16 + h % 16)] |=
          std::bit_cast<uint32_t>(vround_bf16(vset(a.q[h * a.ldq + k]))[0]) >> (16 * (1 - k % 2));
  const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                          39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b * kDecodeBlockRows, n = std::min(a.n - r0, kDecodeBlockRows);
    const uint16_t* rows = a.rows16 + r0 * a.ldr;
    int64_t ld = a.ldr;
    if (!direct) {
      for (int64_t j = 0; j < n; ++j) std::copy_n(rows + j * a.ldr, W, w.rb.data() + j * Wq);
      rows = w.rb.data(), ld = Wq;
    }
    // ---- pass 1: scores of every row, every head group ----
    // Prefetch into L2 the rows two register blocks ahead (the next block's first, at the end:
    // a thread's blocks are contiguous), spread over the dot loop.
    const int64_t steps = Wq / 8, chunk_lines = (RB * ld * 2 + 63) / 64;
    const int64_t lines_per_step = (chunk_lines + steps - 1) / steps;
    for (int64_t r = 0; r < n; r += RB) {
      const uint32_t* p[RB];
      for (int i = 0; i < RB; ++i)
        p[i] = reinterpret_cast<const uint32_t*>(r + i < n ? rows + (r + i) * ld : w.zero.data());
      const char* ahead = direct ? reinterpret_cast<const char*>(rows + (r + 2 * RB) * ld) : nullptr;
      for (int64_t g = 0; g < G; ++g) {
        const uint32_t* qt2 = w.qt2.data() + g * (Wq / 2) * 16;
        __m512 s[RB];
        SEEK_UNROLL
        for (int i = 0; i < RB; ++i) s[i] = _mm512_setzero_ps();
        for (int64_t kp = 0; kp < Wq / 2; kp += 4) {
          if (ahead && g == 0)
            for (int64_t i = 0; i < lines_per_step; ++i)
              _mm_prefetch(ahead + ((kp / 4) * lines_per_step + i) * 64, _MM_HINT_T1);
          SEEK_UNROLL
          for (int kk = 0; kk < 4; ++kk) {
            const __m512i qk = _mm512_loadu_si512(qt2 + (kp + kk) * 16);
            SEEK_UNROLL
            for (int i = 0; i < RB; ++i) s[i] = dot2(s[i], p[i] + kp + kk, qk);
          }
        }
        float* S = w.S.data() + g * kSRows * 16;
        SEEK_UNROLL
        for (int i = 0; i < RB; ++i)
          if (r + i < n) _mm512_storeu_ps(S + (r + i) * 16, vmul(s[i], vset(a.scale)));
      }
    }
    // ---- the block's max, sum and bf16 weights, in pairs ----
    const int64_t np = (n + 1) / 2;
    for (int64_t g = 0; g < G; ++g) {
      float* S = w.S.data() + g * kSRows * 16;
      V mx = vset(-std::numeric_limits<float>::infinity()), sum = vzero();
      for (int64_t j = 0; j < n; ++j) mx = vmax(mx, vload(S + j * 16));
      for (int64_t j = 0; j < n; ++j) {
        const V e = vexp(vsub(vload(S + j * 16), mx));
        sum = vadd(sum, e);
        vstore(S + j * 16, e);
      }
      vstore(S + n * 16, vzero());  // an odd block's last pair
      uint32_t* p2 = w.p2.data() + g * (kDecodeBlockRows / 2) * 16;
      for (int64_t jp = 0; jp < np; ++jp)  // cvtne2ps rounds to nearest even: bf16(e) exactly
        _mm512_storeu_si512(p2 + jp * 16, interleave_bf16(vload(S + 2 * jp * 16), vload(S + (2 * jp + 1) * 16)));
      vstore(w.ml.data() + g * 32, mx);
      vstore(w.ml.data() + g * 32 + 16, sum);
    }
    // ---- pass 2: tile by tile, the rows pair-transposed and the weighted sums ----
    std::fill(w.acc.begin(), w.acc.end(), 0.0f);
    for (int64_t t0 = 0; t0 < n; t0 += kTile) {
      const int64_t nt = std::min(kTile, n - t0), tp = (nt + 1) / 2;
      uint32_t* const vt = w.vt.data();
      for (int64_t jp = 0; jp < tp; ++jp) {
        const uint16_t* even = rows + (t0 + 2 * jp) * ld;
        const bool has_odd = 2 * jp + 1 < nt;
        for (int64_t c = 0; c < dvp; c += 32) {
          const int64_t cnt = std::min<int64_t>(32, dv - c);
          const __mmask32 mk = cnt >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << cnt) - 1);
          const __m512i e = _mm512_maskz_loadu_epi16(mk, even + c);
          const __m512i o = has_odd ? _mm512_maskz_loadu_epi16(mk, even + ld + c) : _mm512_setzero_si512();
          _mm512_storeu_si512(vt + jp * dvp + c, _mm512_permutex2var_epi16(e, lo_idx, o));
          _mm512_storeu_si512(vt + jp * dvp + c + 16, _mm512_permutex2var_epi16(e, hi_idx, o));
        }
      }
      for (int64_t g = 0; g < G; ++g) {
        const uint32_t* p2 = w.p2.data() + (g * (kDecodeBlockRows / 2) + t0 / 2) * 16;
        float* acc = w.acc.data() + g * dvp * 16;
        for (int64_t c = 0; c < dvp; c += C) {
          __m512 ac[C];
          SEEK_UNROLL
          for (int i = 0; i < C; ++i) ac[i] = vload(acc + (c + i) * 16);
          for (int64_t jp = 0; jp < tp; ++jp) {
            const __m512i pj = _mm512_loadu_si512(p2 + jp * 16);
            const uint32_t* v = vt + jp * dvp + c;
            SEEK_UNROLL
            for (int i = 0; i < C; ++i) ac[i] = dot2(ac[i], v + i, pj);
          }
          SEEK_UNROLL
          for (int i = 0; i < C; ++i) vstore(acc + (c + i) * 16, ac[i]);
        }
      }
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
  if (a.bf16()) return decode_blocks_dot(a, b0, b1, states);
  decode_blocks_fma(a, b0, b1, states);
}

float block_weights_bf16(float* s, int64_t n, float* l) { return block_weights_row(s, n, l); }

}  // namespace seek::kernels::avx512
