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
// Precision::BF16 here (no bf16 dot instruction) rounds q, the tile's rows and the weights p to
// bf16 and multiplies them on fp32 FMAs: the reference semantics exactly.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/attention_internal.h"
#include "kernels/matmul_internal.h"
#include "kernels/simd_x86.h"

namespace seek::kernels::SEEK_SIMD_NS {
namespace {

constexpr int64_t kTile = 32;  // rows per online-softmax step

// Online softmax over a tile's nt score vectors S[j] (L heads each): the running max m and sum l
// move to the tile's, and S[j] becomes e^(S[j] − m_new) (rounded to bf16 when `round`). Returns
// e^(m_old − m_new), the factor the weighted sums so far must be scaled by, and whether the max
// grew (else that factor is 1).
struct Rescale {
  V alpha;
  bool grew;
};
inline Rescale online_softmax(float (*S)[L], int64_t nt, float* m, float* l, bool round) {
  const V m_old = vload(m);
  V mx = m_old;
  for (int64_t j = 0; j < nt; ++j) mx = vmax(mx, vload(S[j]));
  const Rescale r{vexp(vsub(m_old, mx)), any_gt(mx, m_old)};
  V sum = vzero();
  for (int64_t j = 0; j < nt; ++j) {
    const V e = vexp(vsub(vload(S[j]), mx));
    sum = vadd(sum, e);
    vstore(S[j], round ? vround_bf16(e) : e);
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
  std::vector<float> tile;  // [kTile, W]: the tile's rows rounded to bf16 (BF16 only)
  std::vector<float> zero;  // [W]: stands in for rows past the end of a tile
};

// One head group over one tile of `nt` rows rp[0..nt) (rp[nt..nt+R) point at zeros). `next`:
// the source rows of the next tile, prefetched by the score pass (null: none).
void tile_step(const DecodeArgs& a, const float* qt, const float* const* rp, int64_t nt,
               const float* next, float* m, float* l, float* acc) {
  const int64_t W = a.W;
  alignas(64) float S[kTile][L];
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
  // Online softmax: a new max rescales what was summed so far by e^(m_old − m_new).
  const auto [alpha, grew] = online_softmax(S, nt, m, l, a.p == Precision::BF16);
  int64_t c = 0;
  for (; c + C <= a.dv; c += C) {
    V ac[C];
    SEEK_UNROLL
    for (int i = 0; i < C; ++i) {
      ac[i] = vload(acc + (c + i) * L);
      if (grew) ac[i] = vmul(ac[i], alpha);
    }
    for (int64_t j = 0; j < nt; ++j) {
      const V pj = vload(S[j]);
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
    for (int64_t j = 0; j < nt; ++j) ac = vfma(vset(rp[j][c]), vload(S[j]), ac);
    vstore(acc + c * L, ac);
  }
}

void decode_blocks_fma(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  thread_local FmaWork w;
  const bool bf = a.p == Precision::BF16;
  const int64_t G = (a.nh + L - 1) / L, W = a.W, dv = a.dv;
  w.qt.assign(size_t(G * W * L), 0.0f);
  w.acc.resize(size_t(G * dv * L));
  w.ml.resize(size_t(G * 2 * L));
  w.zero.assign(size_t(W), 0.0f);
  if (bf) w.tile.resize(size_t(kTile * W));
  for (int64_t h = 0; h < a.nh; ++h)
    for (int64_t k = 0; k < W; ++k) {
      const float v = a.q[h * a.ldq + k];
      w.qt[size_t(((h / L) * W + k) * L + h % L)] = bf ? vround_bf16(vset(v))[0] : v;
    }
  const float* rp[kTile + R];
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b * kDecodeBlockRows, n = std::min(a.n - r0, kDecodeBlockRows);
    const float* rows = a.rows + r0 * a.ldr;
    std::fill(w.acc.begin(), w.acc.end(), 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      std::fill_n(w.ml.data() + g * 2 * L, L, -std::numeric_limits<float>::infinity());
      std::fill_n(w.ml.data() + g * 2 * L + L, L, 0.0f);
    }
    for (int64_t t0 = 0; t0 < n; t0 += kTile) {
      const int64_t nt = std::min(kTile, n - t0);
      for (int64_t j = 0; j < kTile + R; ++j) rp[j] = j < nt ? rows + (t0 + j) * a.ldr : w.zero.data();
      if (bf) {  // the tile's rows rounded once, for every head group
        for (int64_t j = 0; j < nt; ++j) {
          float* d = w.tile.data() + j * W;
          int64_t k = 0;
          for (; k + L <= W; k += L) vstore(d + k, vround_bf16(vload(rp[j] + k)));
          for (; k < W; ++k) d[k] = vround_bf16(vset(rp[j][k]))[0];
          rp[j] = d;
        }
      }
      const float* next = t0 + kTile < n ? rows + (t0 + kTile) * a.ldr : nullptr;
      for (int64_t g = 0; g < G; ++g)
        tile_step(a, w.qt.data() + g * W * L, rp, nt, g == 0 && !bf ? next : nullptr,
                  w.ml.data() + g * 2 * L, w.ml.data() + g * 2 * L + L, w.acc.data() + g * dv * L);
    }
    float* m = states + (b - b0) * state_floats(a.nh, dv);
    for (int64_t h = 0; h < a.nh; ++h) {
      const float* ml = w.ml.data() + (h / L) * 2 * L;
      m[h] = ml[h % L];
      m[a.nh + h] = ml[L + h % L];
      const float* acc = w.acc.data() + (h / L) * dv * L + h % L;
      float* out = m + 2 * a.nh + h * dv;
      for (int64_t c = 0; c < dv; ++c) out[c] = acc[c * L];
    }
  }
}

}  // namespace
}  // namespace seek::kernels::SEEK_SIMD_NS
