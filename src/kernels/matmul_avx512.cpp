// AVX-512 matrix products, small-M side: the decode GEMV (M <= kGemvMaxRows), the bf16-dot GEMVs
// under Precision::BF16 (BF16 weights up to kDotGemvMaxRows rows; FP8 weights up to
// kGemvMaxRows, codes turned into bf16 by shifts) and matmul_t.
// Large M goes to the packed GEMM in matmul_gemm_avx512.cpp.
//
// GEMV: y[m, n] = Σ_k x[m, k] · W[n, k] with M <= 8 is bound by streaming W from memory, so
// the kernel's job is to keep one sequential weight stream per core, turn each weight into fp32
// in as few instructions as possible, and touch it once: all M activation rows are done in the
// same pass (W is read once whatever M is), and where x does not stay in L1, R rows at a time
// share each x load (gemv_rows). The activations are first copied into a buffer `xb` laid out to
// match how each dtype widens best:
//   F32, F16, FP8: 32 consecutive columns per step, two vectors [k..k+15], [k+16..k+31].
//   BF16: a 64-byte load holds 16 (even, odd) pairs; `v << 16` is the even elements as fp32 and
//         `v & 0xffff0000` the odd ones (one op each, no shuffle), so xb stores each 32-column
//         chunk as [16 even columns | 16 odd columns].
// xb is zero-padded to a multiple of 32 columns and weight tails are read with masked loads.
// GCC 12's AVX-512 headers warn about their own code (see matmul_avx512.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <array>
#include <bit>
#include <utility>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/matmul_avx512.h"

namespace seek::kernels::avx512 {
namespace {

// ---- GEMV -------------------------------------------------------------------------------------

// 32 weights of a row from column k (the first n valid) as two fp32 vectors in xb's layout.
// FP8 yields q·2^-120 (fp8_lowered); the GEMV folds 2^120 and the block scale into xb.
template <DType DT, bool Tail>
inline void load32(const uint8_t* row, int64_t k, int64_t n, __m512& a, __m512& b) {
  if constexpr (DT == DType::BF16) {
    const void* p = row + 2 * k;
    __m512i v = Tail ? _mm512_maskz_loadu_epi16(lanes32(n), p) : _mm512_loadu_si512(p);
    // Without this GCC folds the load into both the shift and the and, loading every weight
    // twice (measured 1.4x slower from L2).
    __asm__("" : "+v"(v));
    a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xFFFF0000u))));
  } else if constexpr (DT == DType::F32) {
    const float* p = reinterpret_cast<const float*>(row) + k;
    a = Tail ? _mm512_maskz_loadu_ps(lanes16(n), p) : _mm512_loadu_ps(p);
    b = Tail ? _mm512_maskz_loadu_ps(lanes16(n - 16), p + 16) : _mm512_loadu_ps(p + 16);
  } else if constexpr (DT == DType::F16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
    a = _mm512_cvtph_ps(Tail ? _mm256_maskz_loadu_epi16(lanes16(n), p)
                             : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b = _mm512_cvtph_ps(Tail ? _mm256_maskz_loadu_epi16(lanes16(n - 16), p + 16)
                             : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
  } else {
    const uint8_t* p = row + k;
    a = fp8_lowered(Tail ? _mm_maskz_loadu_epi8(lanes16(n), p)
                         : _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    b = fp8_lowered(Tail ? _mm_maskz_loadu_epi8(lanes16(n - 16), p + 16)
                         : _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
  }
}

// step<Tail>(k, n) over [0, K) in 32-column steps: full steps, then one masked tail step.
template <class Step>
inline void for_steps32(int64_t K, Step& step) {
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) step.template operator()<false>(k, 32);
  if (k < K) step.template operator()<true>(k, K - k);
}

// R rows of W against M rows of xb: y[m*ldy + r] = post · Σ_k, the two halves of each step in
// separate accumulators (independent FMA chains) added at the end, whatever R and M are.
template <DType DT, int M, int R>
void gemv_tile(const float* xb, int64_t xld, const uint8_t* w, int64_t wld, int64_t K, float* y,
               int64_t ldy, float post) {
  constexpr int S = 2;  // fixed: a row's sum does not depend on R or M (kExactRows)
  __m512 acc[S][R][M];
  SEEK_UNROLL
  for (int s = 0; s < S; ++s)
    SEEK_UNROLL
    for (int r = 0; r < R; ++r)
      SEEK_UNROLL
      for (int m = 0; m < M; ++m) acc[s][r][m] = _mm512_setzero_ps();
  auto step = [&]<bool Tail>(int64_t k, int64_t n) {
    __m512 a[R], b[R];
    SEEK_UNROLL
    for (int r = 0; r < R; ++r) load32<DT, Tail>(w + r * wld, k, n, a[r], b[r]);
    SEEK_UNROLL
    for (int m = 0; m < M; ++m) {
      const __m512 xa = _mm512_loadu_ps(xb + m * xld + k);
      const __m512 xc = _mm512_loadu_ps(xb + m * xld + k + 16);
      SEEK_UNROLL
      for (int r = 0; r < R; ++r) {
        acc[0][r][m] = _mm512_fmadd_ps(a[r], xa, acc[0][r][m]);
        acc[S - 1][r][m] = _mm512_fmadd_ps(b[r], xc, acc[S - 1][r][m]);
      }
    }
  };
  for_steps32(K, step);
  SEEK_UNROLL
  for (int r = 0; r < R; ++r)
    SEEK_UNROLL
    for (int m = 0; m < M; ++m) {
      __m512 v = acc[0][r][m];
      if constexpr (S == 2) v = _mm512_add_ps(v, acc[1][r][m]);
      y[m * ldy + r] = _mm512_reduce_add_ps(v) * post;
    }
}

using GemvRowsFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                            float*, int64_t, float);

// How many rows a tile reads at once is a memory-system question before it is a register one.
// Sharing each x load between R rows saves L1 bandwidth, but makes the core read R interleaved
// weight streams, and the hardware prefetcher serves one sequential stream much better: on the
// Zen 4 this was tuned on, one thread reads 33 GB/s from a single stream but 10-18 GB/s from 2-4
// interleaved ones (shorter rows, worse), while a contiguous matrix read row after row is one
// stream. So when x is small enough to be re-read from L1 at no cost (M <= 2, <= 16 KB), rows go
// one at a time; otherwise (long rows, where x lives in L2, or M >= 3, where the FMAs need x
// reuse) R rows share each x load, as many as registers allow: R·M accumulators + 2R weights.
template <DType DT, int M>
void gemv_rows(const float* xb, int64_t xld, const uint8_t* w, int64_t wld, int64_t rows,
               int64_t K, float* y, int64_t ldy, float post) {
  constexpr int R = M == 1 ? 8 : M == 2 ? 4 : M == 3 ? 3 : M == 4 ? 2 : 1;  // 2·R·M <= 18 sums
  int64_t r = 0;
  if (M > 2 || M * K * 4 > 16384)
    for (; r + R <= rows; r += R)
      gemv_tile<DT, M, R>(xb, xld, w + r * wld, wld, K, y + r, ldy, post);
  for (; r < rows; ++r) gemv_tile<DT, M, 1>(xb, xld, w + r * wld, wld, K, y + r, ldy, post);
}

template <DType DT>
GemvRowsFn gemv_rows_for(int64_t M) {
  static constexpr GemvRowsFn table[kGemvMaxRows] = {
      gemv_rows<DT, 1>, gemv_rows<DT, 2>, gemv_rows<DT, 3>, gemv_rows<DT, 4>,
      gemv_rows<DT, 5>, gemv_rows<DT, 6>, gemv_rows<DT, 7>, gemv_rows<DT, 8>};
  return table[M - 1];
}

// FP8 GEMV scaling. The weights arrive as q·2^-120 (fp8_lowered) and W = q·s with one s per
// 128x128 block. For a group of rows inside one 128-row block, s depends only on the column, so
// it is folded into the activations: xg[k] = x[k] · s(k) · 2^64. Then
//   Σ_k xg[k] · (q[k]·2^-120) = 2^-56 · Σ_k x[k]·s(k)·q[k],   y = 2^56 · acc.
// The 2^64 keeps the products in the normal fp32 range (|x·s·q| down to ~2^-70 stays exact)
// while |x·s| may grow to 2^64 before xg could overflow. Each product gets one rounding, as in
// the reference (which rounds q·s instead of x·s). The cost is M·K multiplies per 128 rows.
constexpr float kFp8XLift = 0x1p64f, kFp8Post = 0x1p56f;

template <DType DT>
void gemv(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
          Precision p) {
  const int64_t N = w.rows, K = w.cols, Kp = (K + 31) / 32 * 32;
  const int64_t esz = int64_t(dtype_size(DT)), wld = w.ld * esz;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);

  thread_local Scratch xs;
  float* xb = xs.get<float>(size_t(M * Kp));
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * ldx;
    float* d = xb + m * Kp;
    std::fill(d + (K & ~int64_t(31)), d + Kp, 0.0f);  // the padded last chunk
    for (int64_t k = 0; k < K; ++k) {
      const float v = p == Precision::BF16 ? round_bf16(xr[k]) : xr[k];
      d[DT == DType::BF16 ? (k & ~31) + ((k & 1) << 4) + ((k & 31) >> 1) : k] = v;
    }
  }
  const GemvRowsFn rows_fn = gemv_rows_for<DT>(M);
  parallel_run(threads_for(M * N * K, N * K * esz), [&](int t, int nt) {
    const auto [r0, r1] = split_range(N, t, nt, 16);
    if constexpr (DT != DType::F8_E4M3) {
      rows_fn(xb, Kp, base + r0 * wld, wld, r1 - r0, K, y + r0, ldy, 1.0f);
    } else {
      thread_local Scratch gs;
      float* xg = gs.get<float>(size_t(M * Kp));
      for (int64_t r = r0; r < r1;) {
        const int64_t abs_row = w.row0 + r, re = std::min(r1, r + 128 - abs_row % 128);
        for (int64_t k = 0; k < Kp;) {  // one 128-column scale block at a time
          const int64_t ke = std::min(Kp, k + 128 - (w.col0 + k) % 128);
          const float s = fp8_scale(w, abs_row, w.col0 + std::min(k, K - 1)) * kFp8XLift;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t j = k; j < ke; ++j) xg[m * Kp + j] = xb[m * Kp + j] * s;
          k = ke;
        }
        rows_fn(xg, Kp, base + r * wld, wld, re - r, K, y + r, ldy, kFp8Post);
        r = re;
      }
    }
  });
}

// ---- GEMV on bf16 dot products ----------------------------------------------------------------
// Precision::BF16 with BF16 weights and M <= kDotGemvMaxRows (batched decode): once the
// activations are bf16, vdpbf16ps multiplies 32 weights by 32 activations per instruction, twice
// the fp32 FMA rate, and both operands keep their natural layout: a 64-byte load of 32
// consecutive bf16 weights and one of 32 consecutive bf16 activations are pairs (k, k+1) in the
// same lanes, so the weights are read straight from the tensor, no packing. x becomes
// xh [M][Kp] bf16 (RNE, zero-padded to 32 columns).
// A tile is R weight rows x MC activation rows over one K block: R·MC partial sums in registers,
// each x load shared by R rows, each weight load by MC rows. Partial sums are added into a small
// per-thread accumulator block acc [R][M][16 lanes] at the end of every K block, and the lanes
// are reduced once per row group. (Measured on lm_head-sized weights from DRAM, 1 thread, M = 16:
// 4x6 tiles ~120 GFLOP/s, 3x8 ~107, 2x12 ~85, 1x16 ~40; the fp32 GEMV ~55, the packed bf16
// GEMM ~95.) FP8 weights have their own bf16-dot GEMV below (up to 8 rows); above, widening
// codes to bf16 per row group cost more than the packed GEMM's reuse.

constexpr int64_t kDotGemvMaxRows = 32;
constexpr int64_t kDotKc = 2048;
constexpr int kDotR = 4;   // weight rows per tile at most (see gemv_dot)
constexpr int kDotMC = 6;  // activation rows per tile: 4 x 6 partial sums + 4 weights + x

template <int R, int MC>
void dot_tile(const uint16_t* xh, int64_t xld, const uint16_t* w, int64_t wld, int64_t K,
              bool first, float* acc, int64_t acc_r) {
  __m512 part[R][MC];
  SEEK_UNROLL
  for (int r = 0; r < R; ++r)
    SEEK_UNROLL
    for (int m = 0; m < MC; ++m) part[r][m] = _mm512_setzero_ps();
  auto step = [&]<bool Tail>(int64_t k, int64_t n) {
    __m512i wv[R];
    SEEK_UNROLL
    for (int r = 0; r < R; ++r)
      wv[r] = Tail ? _mm512_maskz_loadu_epi16(lanes32(n), w + r * wld + k)
                   : _mm512_loadu_si512(w + r * wld + k);
    SEEK_UNROLL
    for (int m = 0; m < MC; ++m) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(xh + m * xld + k);
      SEEK_UNROLL
      for (int r = 0; r < R; ++r) part[r][m] = _mm512_dpbf16_ps(part[r][m], (__m512bh)wv[r], xv);
    }
  };
  for_steps32(K, step);
  SEEK_UNROLL
  for (int r = 0; r < R; ++r)
    SEEK_UNROLL
    for (int m = 0; m < MC; ++m) {
      float* a = acc + r * acc_r + m * 16;
      _mm512_store_ps(a, first ? part[r][m] : _mm512_add_ps(part[r][m], _mm512_load_ps(a)));
    }
}

using DotTileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, bool,
                           float*, int64_t);

template <int R, int... Ms>
constexpr std::array<DotTileFn, sizeof...(Ms)> dot_tiles_r(std::integer_sequence<int, Ms...>) {
  return {dot_tile<R, Ms + 1>...};
}
// dot_tile_table[R - 1][MC - 1]
inline constexpr std::array<std::array<DotTileFn, kDotMC>, kDotR> dot_tile_table = {
    dot_tiles_r<1>(std::make_integer_sequence<int, kDotMC>()),
    dot_tiles_r<2>(std::make_integer_sequence<int, kDotMC>()),
    dot_tiles_r<3>(std::make_integer_sequence<int, kDotMC>()),
    dot_tiles_r<4>(std::make_integer_sequence<int, kDotMC>())};

// R weight rows (bf16 words, row stride wld) against all M rows of xh over the K columns both
// pointers start at, in equal chunks of at most kDotMC.
inline void dot_rows(const uint16_t* xh, int64_t xld, int64_t M, const uint16_t* w, int64_t wld,
                     int R, int64_t K, bool first, float* acc) {
  const int64_t n_chunks = (M + kDotMC - 1) / kDotMC;
  for (int64_t c = 0, m = 0; c < n_chunks; ++c) {
    const int64_t mc = (M - m) / (n_chunks - c);
    dot_tile_table[size_t(R - 1)][size_t(mc - 1)](xh + m * xld, xld, w, wld, K, first,
                                                  acc + m * 16, M * 16);
    m += mc;
  }
}

void gemv_dot(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  const int64_t N = w.rows, K = w.cols, Kp = (K + 31) / 32 * 32;
  thread_local Scratch xs;
  uint16_t* xh = xs.get<uint16_t>(size_t(M * Kp));
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * ldx;
    uint16_t* d = xh + m * Kp;
    for (int64_t k = 0; k < K; ++k) d[k] = f32_to_bf16(xr[k]);
    std::fill(d + K, d + Kp, uint16_t(0));
  }
  // One weight row per tile keeps the rows one sequential stream, R rows make R streams that
  // share each x load. Short rows (under 4 KB) stream best one at a time: interleaved, they are
  // too short for the prefetcher (2 threads, weights from DRAM, GB/s at M = 2 / 3 / 4 with one
  // row against four: K = 768 20.0 / 20.9 / 20.0 against 14.2 / 15.1 / 14.9, K = 1536 25.0 /
  // 23.4 / 21.0 against 19.7 / 19.0 / 18.1). Long rows want four once M > 1 (K = 2048 16.3 /
  // 16.7 / 14.4 against 20.4 / 21.6 / 21.6; K = 3072 alike).
  const int R_max = M == 1 || (K < 2048 && M <= 8) ? 1 : kDotR;
  parallel_run(threads_for(M * N * K, N * K * 2), [&](int t, int nt) {
    const auto [r0, r1] = split_range(N, t, nt, 16);
    thread_local Scratch as;
    float* acc = as.get<float>(size_t(kDotR * M * 16));
    for (int64_t r = r0; r < r1;) {
      const int R = int(std::min<int64_t>(r1 - r, R_max));
      const uint16_t* rows = static_cast<const uint16_t*>(w.data) + r * w.ld;
      for (int64_t k = 0; k < K; k += kDotKc)
        dot_rows(xh + k, Kp, M, rows + k, w.ld, R, std::min(kDotKc, K - k), k == 0, acc);
      for (int i = 0; i < R; ++i)
        for (int64_t m = 0; m < M; ++m)
          y[m * ldy + r + i] = _mm512_reduce_add_ps(_mm512_load_ps(acc + (i * M + m) * 16));
      r += R;
    }
  });
}

// ---- FP8 GEMV on bf16 dot products ------------------------------------------------------------
// Precision::BF16 with FP8 weights and M <= kGemvMaxRows (decode). Widening each code to fp32
// (fp8_lowered, then one FMA per 16 codes) costs ~2.2 ns per 64 codes on Zen 4, about what one
// core's DRAM stream delivers them in, so that GEMV stayed at ~70% of the bandwidth. Here 64
// codes become bf16 without a shuffle. Read as 32 words w = c[2j] | c[2j+1] << 8:
//   odd  = (w >>s 4) & 0x87F0           (c[2j+1]: sign to bit 15, eeee.mmm to bits 10..4)
//   even = ((w << 8) >>s 4) & 0x87F0    (c[2j] moved up first)
// each a bf16 with the code's sign, exponent field and mantissa read with bias 127, i.e.
// q·2^-120 as in fp8_lowered: three shifts, two ands and two vdpbf16ps per 64 codes (~1.4 ns
// in the loop, from L1).
// The activations are bf16(x)·2^64 (an exact power-of-two lift), so the products q·x·2^-56 are
// exact normal fp32; per 128-column scale block the sums are multiplied by s·2^56.
// vdpbf16ps reads bf16 subnormals as zero, and e4m3 subnormals (e = 0, m != 0) become exactly
// those. They are rare in real weights (~1e-4 of the codes), so a chunk holding any takes the
// table route instead (fp8x64_to_bf16_pairs: exact q, ~1.8 ns per 64 codes) against a second
// copy of x, bf16(x)·2^-56 in the pair order that route leaves: the same products, the same
// accumulators. (NaN codes are finite on the shift route and NaN on the table route;
// checkpoints never contain them.)
// x becomes xh [M][chunks · 64] bf16: chunks of <= 64 columns that never cross a scale block,
// each stored as [32 even columns | 32 odd columns], zero-padded; the table route's copy xt has
// the same shape.

// One 128-column scale block of the view: `full` chunks of 64 columns from `k`, then a partial
// one if `tail` (its valid codes) is not 0. Only tails take a masked load: a masked byte load
// made the whole loop ~30% slower on Zen 4.
struct Fp8Block {
  int64_t k, chunk;  // first view column; index of its first chunk in xh
  int64_t full;
  __mmask64 tail;
  int64_t col;       // absolute scale column
};
constexpr int64_t kFp8PrefetchBytes = 1024;
// Up to K = this many columns one or two rows of x (12-24 KB of bf16) stay in L1 beside the
// weight stream. Longer x is re-read from L2 for every row, and those misses starve the weight
// stream of fill buffers (down_proj, K = 10944: 10 GB/s instead of 25; R rows sharing each x
// load recovered only 15), so such products keep the fp32 GEMV (x rounded to bf16) at every M.
// From 3 rows of a K up to this, x is read from L2: the price of every M taking one kernel.
constexpr int64_t kFp8DotMaxXCols = 6144;

// `rows` weight rows (one 128-row scale block) against M activation rows, one row at a time:
// one sequential weight stream, with x (<= kFp8DotMaxXCols bf16) staying in L1.
template <int M>
void fp8_dot_rows(const uint16_t* xh, const uint16_t* xt, int64_t xld, const uint8_t* w,
                  int64_t wld, int64_t rows, const Fp8Block* blocks, int64_t n_blocks,
                  const float* scale, float* y, int64_t ldy) {
  constexpr int S = 2;  // even / odd sums apart at every M: a row's result does not depend on M
  const __m512i exp_mask = _mm512_set1_epi8(0x78), man_mask = _mm512_set1_epi8(0x07);
  const __m512i keep = _mm512_set1_epi16(short(0x87F0));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * wld;
    __m512 acc[M];
    SEEK_UNROLL
    for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const Fp8Block& bl = blocks[b];
      __m512 sum[S][M];
      SEEK_UNROLL
      for (int i = 0; i < S; ++i)
        SEEK_UNROLL
        for (int m = 0; m < M; ++m) sum[i][m] = _mm512_setzero_ps();
      auto chunk = [&](__m512i q, int64_t c) {
        const __mmask64 sub =
            _mm512_mask_test_epi8_mask(_mm512_testn_epi8_mask(q, exp_mask), q, man_mask);
        __m512i v0, v1;
        const uint16_t* xc = xh + c * 64;
        if (sub) [[unlikely]] {
          fp8x64_to_bf16_pairs(q, v0, v1);
          xc = xt + c * 64;
        } else {
          v0 = _mm512_and_si512(_mm512_srai_epi16(_mm512_slli_epi16(q, 8), 4), keep);
          v1 = _mm512_and_si512(_mm512_srai_epi16(q, 4), keep);
        }
        SEEK_UNROLL
        for (int m = 0; m < M; ++m) {
          const uint16_t* x = xc + m * xld;
          sum[0][m] = _mm512_dpbf16_ps(sum[0][m], (__m512bh)v0, (__m512bh)_mm512_load_si512(x));
          sum[S - 1][m] =
              _mm512_dpbf16_ps(sum[S - 1][m], (__m512bh)v1, (__m512bh)_mm512_load_si512(x + 32));
        }
      };
      const uint8_t* src = row + bl.k;
      for (int64_t j = 0; j < bl.full; ++j, src += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(src) + kFp8PrefetchBytes, _MM_HINT_T0);
        chunk(_mm512_loadu_si512(src), bl.chunk + j);
      }
      if (bl.tail) chunk(_mm512_maskz_loadu_epi8(bl.tail, src), bl.chunk + bl.full);
      const __m512 s = _mm512_set1_ps(scale[b] * 0x1p56f);
      SEEK_UNROLL
      for (int m = 0; m < M; ++m)
        acc[m] = _mm512_fmadd_ps(S == 2 ? _mm512_add_ps(sum[0][m], sum[S - 1][m]) : sum[0][m], s,
                                 acc[m]);
    }
    SEEK_UNROLL
    for (int m = 0; m < M; ++m) y[m * ldy + r] = _mm512_reduce_add_ps(acc[m]);
  }
}

using Fp8DotRowsFn = void (*)(const uint16_t*, const uint16_t*, int64_t, const uint8_t*, int64_t,
                              int64_t, const Fp8Block*, int64_t, const float*, float*, int64_t);

// One chunk of x (n <= 64 columns) into both layouts: xh = bf16(x)·2^64 as [even | odd] columns,
// xt = bf16(x)·2^-56 in the table route's pair order (words 8j..8j+7 of its first half are
// columns 16j..16j+7, of its second half 16j+8..16j+15). Scaling by a power of two commutes with
// the rounding, so bf16(x·2^64) = bf16(x)·2^64.
inline void fp8_dot_x_chunk(const float* x, int64_t n, uint16_t* xh, uint16_t* xt) {
  __m512 v[4];
  for (int i = 0; i < 4; ++i) v[i] = _mm512_maskz_loadu_ps(lanes16(n - 16 * i), x + 16 * i);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  auto pack = [](__m512 a, __m512 b, float lift) {  // 32 bf16: a's 16 values then b's
    return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(b, _mm512_set1_ps(lift)),
                                                           _mm512_mul_ps(a, _mm512_set1_ps(lift))));
  };
  auto pick = [&](const __m512i& idx, int h) {
    return _mm512_permutex2var_ps(v[2 * h], idx, v[2 * h + 1]);
  };
  _mm512_store_ps(xh, pack(pick(even, 0), pick(even, 1), 0x1p64f));
  _mm512_store_ps(xh + 32, pack(pick(odd, 0), pick(odd, 1), 0x1p64f));
  _mm512_store_ps(xt, pack(pick(lo, 0), pick(lo, 1), 0x1p-56f));
  _mm512_store_ps(xt + 32, pack(pick(hi, 0), pick(hi, 1), 0x1p-56f));
}

void gemv_dot_fp8(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                  int64_t ldy) {
  const int64_t N = w.rows, K = w.cols;
  thread_local std::vector<Fp8Block> blocks;
  blocks.clear();
  int64_t n_chunks = 0;
  for (int64_t k = 0; k < K;) {
    const int64_t n = std::min(K - k, 128 - (w.col0 + k) % 128);
    Fp8Block b{k, n_chunks, n / 64, 0, (w.col0 + k) / 128};
    if (n % 64) b.tail = (__mmask64(1) << (n % 64)) - 1;
    n_chunks += b.full + (b.tail != 0);
    blocks.push_back(b);
    k += n;
  }
  const int64_t xld = n_chunks * 64;
  thread_local Scratch xs;
  uint16_t* xh = xs.get<uint16_t>(size_t(2 * M * xld));
  uint16_t* xt = xh + M * xld;
  for (int64_t m = 0; m < M; ++m)
    for (const Fp8Block& b : blocks)
      for (int64_t j = 0; j <= b.full; ++j) {
        const int64_t n = j < b.full ? 64 : std::popcount(uint64_t(b.tail));
        if (n == 0) continue;
        const int64_t off = m * xld + (b.chunk + j) * 64;
        fp8_dot_x_chunk(x + m * ldx + b.k + 64 * j, n, xh + off, xt + off);
      }
  static constexpr Fp8DotRowsFn table[kGemvMaxRows] = {
      fp8_dot_rows<1>, fp8_dot_rows<2>, fp8_dot_rows<3>, fp8_dot_rows<4>,
      fp8_dot_rows<5>, fp8_dot_rows<6>, fp8_dot_rows<7>, fp8_dot_rows<8>};
  const Fp8DotRowsFn rows_fn = table[M - 1];
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const Fp8Block* bl = blocks.data();
  const int64_t n_blocks = int64_t(blocks.size());
  parallel_run(threads_for(M * N * K, N * K), [&](int t, int nt) {
    const auto [r0, r1] = split_range(N, t, nt, 16);
    thread_local std::vector<float> scale;
    scale.resize(size_t(n_blocks));
    for (int64_t r = r0; r < r1;) {  // row groups inside one 128-row scale block
      const int64_t abs_row = w.row0 + r, re = std::min(r1, r + 128 - abs_row % 128);
      for (int64_t b = 0; b < n_blocks; ++b)
        scale[size_t(b)] = w.scale_inv[(abs_row / 128) * w.scale_ld + bl[b].col];
      rows_fn(xh, xt, xld, base + r * w.ld, w.ld, re - r, bl, n_blocks, scale.data(), y + r, ldy);
      r = re;
    }
  });
}

// ---- matmul_t ---------------------------------------------------------------------------------
// y[m, k] = Σ_n x[m, n] · W[n, k]: W's rows are contiguous along the output, so each step loads
// KT vectors of one W row and broadcasts MT activations (an outer product into MT x KT
// accumulators). W is walked in blocks of rows that end on absolute 128-row boundaries, which is
// where an FP8 block scale can change and keeps a 128 x 64 strip of W in L1 across m-tiles.

constexpr int kTKT = 4;  // vectors of 16 output columns per tile
constexpr int kTMT = 6;  // activation rows per tile

template <DType DT, int MT>
void mt_tile(const float* x, int64_t ldx, const uint8_t* w, int64_t wld, int64_t nrows,
             int64_t k0, int64_t kn, const float* colscale, float* y, int64_t ldy, bool first) {
  __mmask16 mask[kTKT];
  SEEK_UNROLL
  for (int j = 0; j < kTKT; ++j) mask[j] = lanes16(kn - 16 * j);
  __m512 acc[MT][kTKT];
  SEEK_UNROLL
  for (int m = 0; m < MT; ++m)
    SEEK_UNROLL
    for (int j = 0; j < kTKT; ++j) acc[m][j] = _mm512_setzero_ps();
  for (int64_t n = 0; n < nrows; ++n) {
    __m512 wv[kTKT];
    SEEK_UNROLL
    for (int j = 0; j < kTKT; ++j) {
      wv[j] = load16<DT>(w + n * wld, k0 + 16 * j, mask[j]);
      if constexpr (DT == DType::F8_E4M3)  // q·s rounded once, exactly as WeightView::at
        wv[j] = _mm512_mul_ps(wv[j], _mm512_loadu_ps(colscale + 16 * j));
    }
    SEEK_UNROLL
    for (int m = 0; m < MT; ++m) {
      const __m512 xv = _mm512_set1_ps(x[m * ldx + n]);
      SEEK_UNROLL
      for (int j = 0; j < kTKT; ++j) acc[m][j] = _mm512_fmadd_ps(xv, wv[j], acc[m][j]);
    }
  }
  SEEK_UNROLL
  for (int m = 0; m < MT; ++m)
    SEEK_UNROLL
    for (int j = 0; j < kTKT; ++j) {
      float* yp = y + m * ldy + k0 + 16 * j;
      if (!first) acc[m][j] = _mm512_add_ps(acc[m][j], _mm512_maskz_loadu_ps(mask[j], yp));
      _mm512_mask_storeu_ps(yp, mask[j], acc[m][j]);
    }
}

template <DType DT>
void matmul_t_dt(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                 int64_t ldy) {
  using TileFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                          int64_t, const float*, float*, int64_t, bool);
  static constexpr TileFn tiles[kTMT] = {mt_tile<DT, 1>, mt_tile<DT, 2>, mt_tile<DT, 3>,
                                         mt_tile<DT, 4>, mt_tile<DT, 5>, mt_tile<DT, 6>};
  const int64_t N = w.rows, K = w.cols, esz = int64_t(dtype_size(DT)), wld = w.ld * esz;
  const int64_t kw = 16 * kTKT, ktiles = (K + kw - 1) / kw;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const int nt = threads_for(M * N * K, N * K * esz);
  // Threads split the output columns when there are enough tiles, else the activation rows.
  const bool split_k = ktiles >= 2 * nt || M < 2 * kTMT;
  parallel_run(nt, [&](int t, int nt) {
    const auto [kt0, kt1] =
        split_k ? split_range(ktiles, t, nt) : std::pair<int64_t, int64_t>{0, ktiles};
    const auto [m0, m1] = split_k ? std::pair<int64_t, int64_t>{0, M} : split_range(M, t, nt, kTMT);
    alignas(64) float colscale[16 * kTKT] = {};
    for (int64_t kt = kt0; kt < kt1; ++kt) {
      const int64_t k0 = kt * kw, kn = std::min(kw, K - k0);
      for (int64_t n = 0; n < N;) {
        const int64_t ne = std::min(N, n + 128 - (w.row0 + n) % 128);
        if constexpr (DT == DType::F8_E4M3)
          for (int64_t j = 0; j < kn; ++j) colscale[j] = fp8_scale(w, w.row0 + n, w.col0 + k0 + j);
        for (int64_t m = m0; m < m1; m += kTMT) {
          const int64_t mt = std::min<int64_t>(kTMT, m1 - m);
          tiles[mt - 1](x + m * ldx + n, ldx, base + n * wld, wld, ne - n, k0, kn, colscale,
                        y + m * ldy, ldy, n == 0);
        }
        n = ne;
      }
    }
  });
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  if (p == Precision::BF16 && w.dtype == DType::BF16 && M <= kDotGemvMaxRows)
    return gemv_dot(x, M, ldx, w, y, ldy);
  // Every M up to 8 takes the same kernel for the same weights, so a speculative verification
  // rounds each token as decoding it alone does (kExactRows); from 3 rows of long K, x is read
  // from L2 rather than L1.
  if (p == Precision::BF16 && w.dtype == DType::F8_E4M3 && M <= kGemvMaxRows && w.cols <= kFp8DotMaxXCols)
    return gemv_dot_fp8(x, M, ldx, w, y, ldy);
  // With fp32 FMAs, packing costs about as much per weight as 9-16 rows of math, so up to 16
  // rows two GEMV passes over the weights beat the GEMM (measured ~1.7x at M = 9..16). The bf16
  // GEMM does twice the math per instruction and wins from M = 9, except against the bf16-dot
  // GEMV (BF16 weights, up to 32 rows).
  if (M > kGemvMaxRows && M > kExactRows && !(p == Precision::F32 && M <= 2 * kGemvMaxRows))
    return gemm(x, M, ldx, w, y, ldy, p);
  if (M > kGemvMaxRows) {
    const int64_t half = (M + 1) / 2;
    avx512::matmul(x, half, ldx, w, y, ldy, p);
    return avx512::matmul(x + half * ldx, M - half, ldx, w, y + half * ldy, ldy, p);
  }
  switch (w.dtype) {
    case DType::F32: return gemv<DType::F32>(x, M, ldx, w, y, ldy, p);
    case DType::BF16: return gemv<DType::BF16>(x, M, ldx, w, y, ldy, p);
    case DType::F16: return gemv<DType::F16>(x, M, ldx, w, y, ldy, p);
    case DType::F8_E4M3: return gemv<DType::F8_E4M3>(x, M, ldx, w, y, ldy, p);
    default: return portable::matmul(x, M, ldx, w, y, ldy, p);
  }
}

void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  switch (w.dtype) {
    case DType::F32: return matmul_t_dt<DType::F32>(x, M, ldx, w, y, ldy);
    case DType::BF16: return matmul_t_dt<DType::BF16>(x, M, ldx, w, y, ldy);
    case DType::F16: return matmul_t_dt<DType::F16>(x, M, ldx, w, y, ldy);
    case DType::F8_E4M3: return matmul_t_dt<DType::F8_E4M3>(x, M, ldx, w, y, ldy);
    default: return portable::matmul_t(x, M, ldx, w, y, ldy);
  }
}

}  // namespace seek::kernels::avx512
