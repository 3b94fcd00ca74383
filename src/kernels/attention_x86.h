// attention_decode's blocks on fp32 FMAs, compiled twice: into avx2:: (attention_avx2.cpp, 8
// lanes) and into avx512:: (attention_avx512.cpp, 16 lanes; its Precision::BF16 runs on bf16 dots
// instead, see there). The including file defines SEEK_SIMD_NS and SEEK_SIMD_AVX512 (0 or 1), as
// for kernels/simd_x86.h (the vector layer); every helper is in an anonymous namespace, so the two
// compilations never merge at link time.
//
// Heads go in the vector lanes: with q transposed once per call (qt[k] = q[0..L-1, k]), a row's
// scores for L heads are Σ_k broadcast(row[k]) · qt[k] (no horizontal sums), the online softmax
// is lane-wise, and the accumulator is kept transposed, acc[c] = (Σ_j p_j[h] · row_j[c])_h, so
// the weighted sum is again broadcast(row[c]) · p_j. Rows are taken kTile at a time: each row is
// read from memory once, by the score pass of the first head group, which also prefetches the
// next tile; the value pass and the other head groups (V3: 128 heads = 8 groups of 16) reread the
// tile from L1/L2.
//
// BF16 rows (AVX2 here: no bf16 dot instruction) are widened to fp32 a tile at a time and
// multiplied on fp32 FMAs with q rounded to bf16, in two passes per block: every row's scores,
// then the block's max, exponentials and bf16 weights, then the weighted sum (attention.h's
// roundings exactly). AVX-512 runs BF16 rows on bf16 dots instead (attention_avx512.cpp).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/attention_internal.h"
#include "kernels/matmul_internal.h"
#include "kernels/simd_x86.h"

namespace seek::kernels::SEEK_SIMD_NS {
namespace {

constexpr int64_t kTile = 32;  // rows per online-softmax step

// Online softmax over a tile's nt score vectors S[j] (L heads each): the running max m and sum l
// move to the tile's, and S[j] becomes e^(S[j] − m_new). Returns e^(m_old − m_new), the factor
// the weighted sums so far must be scaled by, and whether the max grew (else that factor is 1).
struct Rescale {
  V alpha;
  bool grew;
};
inline Rescale online_softmax(float (*S)[L], int64_t nt, float* m, float* l) {
  const V m_old = vload(m);
  V mx = m_old;
  for (int64_t j = 0; j < nt; ++j) mx = vmax(mx, vload(S[j]));
  const Rescale r{vexp(vsub(m_old, mx)), any_gt(mx, m_old)};
  V sum = vzero();
  for (int64_t j = 0; j < nt; ++j) {
    const V e = vexp(vsub(vload(S[j]), mx));
    sum = vadd(sum, e);
    vstore(S[j], e);
  }
  vstore(l, vfma(vload(l), r.alpha, sum));
  vstore(m, mx);
  return r;
}
constexpr int R = 8;           // rows per register block of the score pass
constexpr int C = 16;          // accumulator columns per register block of the value pass
constexpr int64_t kLine = 16;  // floats per cache line

// Per-thread buffers, grown as needed.
struct FmaWork {
  std::vector<float> qt;    // [G, W, L]: head group g's queries, transposed (zeros past nh)
  std::vector<float> acc;   // [G, dv, L]: transposed accumulators
  std::vector<float> ml;    // [G, 2, L]: running max and sum
  std::vector<float> tile;  // [kTile, W]: BF16 rows widened
  std::vector<float> S;     // [G, kDecodeBlockRows, L]: BF16 rows: the block's scores, then weights
  std::vector<float> zero;  // [W]: stands in for rows past the end of a tile
};

// Scores of one head group for rows rp[0..nt) (rp[nt..nt+R) point at zeros) into S[0..nt).
// `next`: the source rows of the next tile, prefetched (null: none).
void score_rows(const DecodeArgs& a, const float* qt, const float* const* rp, int64_t nt,
                const float* next, float (*S)[L]) {
  const int64_t W = a.W;
  for (int64_t r = 0; r < nt; r += R) {
    V s[R];
    const float* p[R];
    SEEK_UNROLL
    for (int i = 0; i < R; ++i) s[i] = vzero(), p[i] = rp[r + i];
    int64_t k = 0;
    for (; k + kLine <= W; k += kLine) {
      if (next)
        for (int i = 0; i < R; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(next + (r + i) * a.ldr + k), _MM_HINT_T1);
      SEEK_UNROLL
      for (int kk = 0; kk < kLine; ++kk) {
        const V qk = vload(qt + (k + kk) * L);
        SEEK_UNROLL
        for (int i = 0; i < R; ++i) s[i] = vfma(vset(p[i][k + kk]), qk, s[i]);
      }
    }
    for (; k < W; ++k) {
      const V qk = vload(qt + k * L);
      SEEK_UNROLL
      for (int i = 0; i < R; ++i) s[i] = vfma(vset(p[i][k]), qk, s[i]);
    }
    SEEK_UNROLL
    for (int i = 0; i < R; ++i)
      if (r + i < nt) vstore(S[r + i], vmul(s[i], vset(a.scale)));
  }
}

// acc (transposed, [dv, L]) ← acc·alpha (when `grew`) + Σ_j P[j] · rp[j][0, dv).
void value_rows(const DecodeArgs& a, const float* const* rp, int64_t nt, const float (*P)[L],
                V alpha, bool grew, float* acc) {
  int64_t c = 0;
  for (; c + C <= a.dv; c += C) {
    V ac[C];
    SEEK_UNROLL
    for (int i = 0; i < C; ++i) {
      ac[i] = vload(acc + (c + i) * L);
      if (grew) ac[i] = vmul(ac[i], alpha);
    }
    for (int64_t j = 0; j < nt; ++j) {
      const V pj = vload(P[j]);
      const float* v = rp[j] + c;
      SEEK_UNROLL
      for (int i = 0; i < C; ++i) ac[i] = vfma(vset(v[i]), pj, ac[i]);
    }
    SEEK_UNROLL
    for (int i = 0; i < C; ++i) vstore(acc + (c + i) * L, ac[i]);
  }
  for (; c < a.dv; ++c) {
    V ac = vload(acc + c * L);
    if (grew) ac = vmul(ac, alpha);
    for (int64_t j = 0; j < nt; ++j) ac = vfma(vset(rp[j][c]), vload(P[j]), ac);
    vstore(acc + c * L, ac);
  }
}

// Block b's state out of the per-group max/sum and transposed accumulators.
void write_state(const DecodeArgs& a, const FmaWork& w, float* m) {
  const int64_t dv = a.dv;
  for (int64_t h = 0; h < a.nh; ++h) {
    const float* ml = w.ml.data() + (h / L) * 2 * L;
    m[h] = ml[h % L];
    m[a.nh + h] = ml[L + h % L];
    const float* acc = w.acc.data() + (h / L) * dv * L + h % L;
    float* out = m + 2 * a.nh + h * dv;
    for (int64_t c = 0; c < dv; ++c) out[c] = acc[c * L];
  }
}

void decode_blocks_fma(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  thread_local FmaWork w;
  const bool bf = a.bf16();
  const int64_t G = (a.nh + L - 1) / L, W = a.W, dv = a.dv;
  w.qt.assign(size_t(G * W * L), 0.0f);
  w.acc.resize(size_t(G * dv * L));
  w.ml.resize(size_t(G * 2 * L));
  w.zero.assign(size_t(W), 0.0f);
  if (bf) w.tile.resize(size_t(kTile * W)), w.S.resize(size_t(G * kDecodeBlockRows * L));
  for (int64_t h = 0; h < a.nh; ++h)
    for (int64_t k = 0; k < W; ++k) {
      const float v = a.q[h * a.ldq + k];
      w.qt[size_t(((h / L) * W + k) * L + h % L)] = bf ? vround_bf16(vset(v))[0] : v;
    }
  const float* rp[kTile + R];
  // BF16: the tile's rows widened into w.tile (rp pointing there).
  auto widen = [&](int64_t r0, int64_t t0, int64_t nt) {
    for (int64_t j = 0; j < kTile + R; ++j) rp[j] = w.zero.data();
    for (int64_t j = 0; j < nt; ++j) {
      const uint16_t* src = a.rows16 + (r0 + t0 + j) * a.ldr;
      float* d = w.tile.data() + j * W;
      int64_t k = 0;
      for (; k + L <= W; k += L) vstore(d + k, vload_bf16(src + k));
      for (; k < W; ++k) d[k] = bf16_to_f32(src[k]);
      rp[j] = d;
    }
  };
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b * kDecodeBlockRows, n = std::min(a.n - r0, kDecodeBlockRows);
    std::fill(w.acc.begin(), w.acc.end(), 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      std::fill_n(w.ml.data() + g * 2 * L, L, -std::numeric_limits<float>::infinity());
      std::fill_n(w.ml.data() + g * 2 * L + L, L, 0.0f);
    }
    if (!bf) {  // one pass, an online softmax per tile
      const float* rows = a.rows + r0 * a.ldr;
      for (int64_t t0 = 0; t0 < n; t0 += kTile) {
        const int64_t nt = std::min(kTile, n - t0);
        for (int64_t j = 0; j < kTile + R; ++j) rp[j] = j < nt ? rows + (t0 + j) * a.ldr : w.zero.data();
        const float* next = t0 + kTile < n ? rows + (t0 + kTile) * a.ldr : nullptr;
        for (int64_t g = 0; g < G; ++g) {
          alignas(64) float S[kTile][L];
          score_rows(a, w.qt.data() + g * W * L, rp, nt, g == 0 ? next : nullptr, S);
          float* m = w.ml.data() + g * 2 * L;
          const auto [alpha, grew] = online_softmax(S, nt, m, m + L);
          value_rows(a, rp, nt, S, alpha, grew, w.acc.data() + g * dv * L);
        }
      }
    } else {  // two passes: the block's scores, its bf16 weights, the weighted sum
      for (int64_t t0 = 0; t0 < n; t0 += kTile) {
        const int64_t nt = std::min(kTile, n - t0);
        widen(r0, t0, nt);
        for (int64_t g = 0; g < G; ++g)
          score_rows(a, w.qt.data() + g * W * L, rp, nt, nullptr,
                     reinterpret_cast<float (*)[L]>(w.S.data() + (g * kDecodeBlockRows + t0) * L));
      }
      for (int64_t g = 0; g < G; ++g) {
        float(*S)[L] = reinterpret_cast<float (*)[L]>(w.S.data() + g * kDecodeBlockRows * L);
        float* m = w.ml.data() + g * 2 * L;
        online_softmax(S, n, m, m + L);  // from m = -inf, l = 0: the block's max and sum
        for (int64_t j = 0; j < n; ++j) vstore(S[j], vround_bf16(vload(S[j])));
      }
      for (int64_t t0 = 0; t0 < n; t0 += kTile) {
        const int64_t nt = std::min(kTile, n - t0);
        widen(r0, t0, nt);
        for (int64_t g = 0; g < G; ++g)
          value_rows(a, rp, nt,
                     reinterpret_cast<const float (*)[L]>(w.S.data() + (g * kDecodeBlockRows + t0) * L),
                     vzero(), false, w.acc.data() + g * dv * L);
      }
    }
    write_state(a, w, states + (b - b0) * state_floats(a.nh, dv));
  }
}

// attention.h's block weights for one block of a score row, lanes over rows (vexp is
// elementwise, so each weight has the bits the decode kernel gives it).
float block_weights_row(float* s, int64_t n, float* l) {
  alignas(64) float t[L];
  V mx = vset(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + L <= n; j += L) mx = vmax(mx, vload(s + j));
  vstore(t, mx);
  float m = t[0];
  for (int i = 1; i < L; ++i) m = std::max(m, t[i]);
  for (; j < n; ++j) m = std::max(m, s[j]);
  const V vm = vset(m);
  V sum = vzero();
  for (j = 0; j + L <= n; j += L) {
    const V e = vexp(vsub(vload(s + j), vm));
    sum = vadd(sum, e);
    vstore(s + j, vround_bf16(e));
  }
  vstore(t, sum);
  float total = 0.0f;
  for (int i = 0; i < L; ++i) total += t[i];
  if (j < n) {  // the tail through the same vexp
    for (int i = 0; i < L; ++i) t[i] = j + i < n ? s[j + i] : m;
    const V e = vexp(vsub(vload(t), vm));
    vstore(t, e);
    for (int i = 0; j + i < n; ++i) total += t[i];
    vstore(t, vround_bf16(e));
    for (int i = 0; j + i < n; ++i) s[j + i] = t[i];
  }
  *l = total;
  return m;
}

}  // namespace
}  // namespace seek::kernels::SEEK_SIMD_NS
