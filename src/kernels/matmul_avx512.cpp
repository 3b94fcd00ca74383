// AVX-512 matrix products, small-M side: the decode GEMV (M <= kGemvMaxRows), the bf16-dot GEMV
// of batched decode (BF16 weights, Precision::BF16, M <= kDotGemvMaxRows) and matmul_t.
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
#include "kernels/matmul_avx512.h"

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/matmul_internal.h"

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

// R rows of W against M rows of xb: y[m*ldy + r] = post · Σ_k. When R·M is small the two halves
// of each step go to separate accumulators so enough independent FMA chains are in flight.
template <DType DT, int M, int R>
void gemv_tile(const float* xb, int64_t xld, const uint8_t* w, int64_t wld, int64_t K, float* y,
               int64_t ldy, float post) {
  constexpr int S = R * M < 8 ? 2 : 1;
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
  constexpr int R = M == 1 ? 8 : M == 2 ? 4 : M <= 4 ? 3 : 2;
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
// GEMM ~95.) FP8 weights keep the fp32 GEMV up to 8 rows and the GEMM above: widening codes to
// bf16 per row group cost more than the dot products saved.

constexpr int64_t kDotGemvMaxRows = 32;
constexpr int64_t kDotKc = 2048;
constexpr int kDotR = 4;   // weight rows per tile (M >= 3; fewer rows keep one weight stream)
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
  const int R_max = M <= 2 ? 1 : kDotR;
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
  // With fp32 FMAs, packing costs about as much per weight as 9-16 rows of math, so up to 16
  // rows two GEMV passes over the weights beat the GEMM (measured ~1.7x at M = 9..16). The bf16
  // GEMM does twice the math per instruction and wins from M = 9, except against the bf16-dot
  // GEMV (BF16 weights, up to 32 rows).
  if (M > kGemvMaxRows && !(p == Precision::F32 && M <= 2 * kGemvMaxRows))
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
