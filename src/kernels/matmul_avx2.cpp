// AVX2 + FMA matrix products: the AVX-512 design (matmul_avx512.cpp, matmul_gemm_avx512.cpp) at
// 8 lanes and 16 registers, without a bf16 dot instruction. Precision::BF16 therefore means
// "activations rounded to bf16, fp32 FMA" here, which is the reference semantics exactly.
//   GEMV (M <= 8): R weight rows share each activation load; 16 columns per step.
//   GEMM: weights packed into fp32 panels [k][16] (FP8 as fp32(q·s)), 6x16 FMA micro-kernel.
//   matmul_t: outer products of one W row (16 columns) with 6 broadcast activations.
// AVX2 has no byte/word masked loads, so row tails go through a small zeroed buffer.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "kernels/matmul_internal.h"
#include "kernels/isa_target.h"

namespace seek::kernels::avx2 {
namespace {

// FP8 E4M3 -> q·2^-120 by sign-extension, shift and mask (see fp8_lowered in matmul_avx512.h).
inline __m256 fp8_lowered(__m128i bytes8) {
  const __m256i v = _mm256_slli_epi32(_mm256_cvtepi8_epi32(bytes8), 20);
  return _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0x87F00000u))));
}

// Copies the first n (< 16) elements of a row from column k into a zeroed 16-element buffer, so
// the full-width loads below read neither past the row nor garbage.
template <DType DT>
inline const uint8_t* tail16(const uint8_t* row, int64_t k, int64_t n, uint8_t (&buf)[64]) {
  const int64_t esz = int64_t(dtype_size(DT));
  std::memset(buf, 0, sizeof buf);
  if (n > 0) std::memcpy(buf, row + k * esz, size_t(std::min<int64_t>(n, 16) * esz));
  return buf;
}

// 16 weights of a row from column k as two fp32 vectors, from a pointer to the first of them.
// BF16: (even, odd) elements — one 32-byte load holds 8 pairs; `<< 16` and `& 0xffff0000` widen
// them without shuffles. Others: elements [0..7], [8..15]. FP8: q·2^-120 (scale folded by caller).
template <DType DT>
inline void load16(const uint8_t* p, __m256& a, __m256& b) {
  if constexpr (DT == DType::BF16) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    __asm__("" : "+x"(v));  // one load, not one folded into each of the two uses
    a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0xFFFF0000u))));
  } else if constexpr (DT == DType::F32) {
    a = _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    b = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8);
  } else if constexpr (DT == DType::F16) {
    a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
  } else {
    a = fp8_lowered(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    b = fp8_lowered(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)));
  }
}

// 16 weights in natural order, exact values (FP8: q, no scale), the first n valid.
template <DType DT>
inline void load16_exact(const uint8_t* row, int64_t k, int64_t n, __m256& a, __m256& b) {
  uint8_t buf[64];
  const uint8_t* p = n >= 16 ? row + k * int64_t(dtype_size(DT)) : tail16<DT>(row, k, n, buf);
  if constexpr (DT == DType::BF16) {  // natural order: widen with zero-extension instead
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    a = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)), 16));
    b = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)), 16));
  } else {
    load16<DT>(p, a, b);
    if constexpr (DT == DType::F8_E4M3) {
      a = _mm256_mul_ps(a, _mm256_set1_ps(0x1p120f));
      b = _mm256_mul_ps(b, _mm256_set1_ps(0x1p120f));
    }
  }
}

// c[0..n) = (first ? 0 : c) + [a | b] for n <= 16: vector stores for whole tiles, a stack
// copy for ragged ones.
inline void store16(float* c, int64_t n, bool first, __m256 a, __m256 b) {
  if (n == 16) {
    if (!first) {
      a = _mm256_add_ps(a, _mm256_loadu_ps(c));
      b = _mm256_add_ps(b, _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, a);
    _mm256_storeu_ps(c + 8, b);
    return;
  }
  alignas(32) float t[16];
  _mm256_store_ps(t, a);
  _mm256_store_ps(t + 8, b);
  for (int64_t j = 0; j < n; ++j) c[j] = first ? t[j] : c[j] + t[j];
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// ---- GEMV -------------------------------------------------------------------------------------

// R rows of W against M rows of xb: y[m*ldy + r] = post · Σ_k, each row's sum in two chains (the
// first and second 8 columns of every 16) added at the end. The chains are fixed, not chosen by
// R·M, so a row's result depends on neither R nor M: a decode step (M = 1) and a speculative
// verification (M = 2..9) round every product sum the same way.
template <DType DT, int M, int R>
void gemv_tile(const float* xb, int64_t xld, const uint8_t* w, int64_t wld, int64_t K, float* y,
               int64_t ldy, float post) {
  constexpr int S = 2;
  const int64_t esz = int64_t(dtype_size(DT));
  __m256 acc[S][R][M];
  SEEK_UNROLL
  for (int s = 0; s < S; ++s)
    SEEK_UNROLL
    for (int r = 0; r < R; ++r)
      SEEK_UNROLL
      for (int m = 0; m < M; ++m) acc[s][r][m] = _mm256_setzero_ps();
  auto step = [&](int64_t k, const uint8_t* const* rows) {
    SEEK_UNROLL
    for (int r = 0; r < R; ++r) {
      __m256 a, b;
      load16<DT>(rows[r], a, b);
      SEEK_UNROLL
      for (int m = 0; m < M; ++m) {
        acc[0][r][m] = _mm256_fmadd_ps(a, _mm256_loadu_ps(xb + m * xld + k), acc[0][r][m]);
        acc[S - 1][r][m] =
            _mm256_fmadd_ps(b, _mm256_loadu_ps(xb + m * xld + k + 8), acc[S - 1][r][m]);
      }
    }
  };
  const uint8_t* rows[R];
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    SEEK_UNROLL
    for (int r = 0; r < R; ++r) rows[r] = w + r * wld + k * esz;
    step(k, rows);
  }
  if (k < K) {
    uint8_t buf[R][64];
    SEEK_UNROLL
    for (int r = 0; r < R; ++r) rows[r] = tail16<DT>(w + r * wld, k, K - k, buf[r]);
    step(k, rows);
  }
  SEEK_UNROLL
  for (int r = 0; r < R; ++r)
    SEEK_UNROLL
    for (int m = 0; m < M; ++m) {
      __m256 v = acc[0][r][m];
      if constexpr (S == 2) v = _mm256_add_ps(v, acc[1][r][m]);
      y[m * ldy + r] = hsum(v) * post;
    }
}

using GemvRowsFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                            float*, int64_t, float);

template <DType DT, int M>
void gemv_rows(const float* xb, int64_t xld, const uint8_t* w, int64_t wld, int64_t rows,
               int64_t K, float* y, int64_t ldy, float post) {
  constexpr int R = M == 1 ? 4 : M == 2 ? 3 : M == 3 ? 2 : 1;  // 2·R·M accumulators
  int64_t r = 0;
  if (M > 2 || M * K * 4 > 16384)  // one weight stream when x stays in L1: see matmul_avx512.cpp
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

constexpr float kFp8XLift = 0x1p64f, kFp8Post = 0x1p56f;  // as in matmul_avx512.cpp

template <DType DT>
void gemv(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
          Precision p) {
  const int64_t N = w.rows, K = w.cols, Kp = (K + 15) / 16 * 16;
  const int64_t esz = int64_t(dtype_size(DT)), wld = w.ld * esz;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  thread_local Scratch xs;
  float* xb = xs.get<float>(size_t(M * Kp));
  for (int64_t m = 0; m < M; ++m) {
    float* d = xb + m * Kp;
    std::fill(d + (K & ~int64_t(15)), d + Kp, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float v = p == Precision::BF16 ? round_bf16(x[m * ldx + k]) : x[m * ldx + k];
      d[DT == DType::BF16 ? (k & ~15) + ((k & 1) << 3) + ((k & 15) >> 1) : k] = v;
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
        for (int64_t k = 0; k < Kp;) {
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

// ---- GEMM -------------------------------------------------------------------------------------

constexpr int kMR = 6, kNR = 16;
constexpr int64_t kKc = 256, kNC = 128;

template <int MR>
void ukernel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
             int64_t nr, bool first) {
  __m256 acc[MR][2];
  SEEK_UNROLL
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * kNR), b1 = _mm256_load_ps(b + k * kNR + 8);
    SEEK_UNROLL
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + k);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  SEEK_UNROLL
  for (int i = 0; i < MR; ++i) store16(c + i * ldc, nr, first, acc[i][0], acc[i][1]);
}
constexpr decltype(&ukernel<1>) kKernels[kMR] = {ukernel<1>, ukernel<2>, ukernel<3>,
                                                 ukernel<4>, ukernel<5>, ukernel<6>};

// dst[k][16] = W[n0 + r, k0 + k] (fp32; FP8 as fp32(q·s)), zero rows past nr.
template <DType DT>
void pack(const WeightView& w, int64_t n0, int64_t nr, int64_t k0, int64_t kc, float* dst) {
  const int64_t wld = w.ld * int64_t(dtype_size(DT));
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  for (int r = 0; r < kNR; ++r) {
    if (r >= nr) {
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + r] = 0.0f;
      continue;
    }
    for (int64_t k = 0; k < kc; k += 16) {
      alignas(32) float t[16];
      __m256 a, b;
      load16_exact<DT>(base + (n0 + r) * wld, k0 + k, kc - k, a, b);
      _mm256_store_ps(t, a);
      _mm256_store_ps(t + 8, b);
      for (int64_t j = 0; j < 16 && k + j < kc; ++j) {
        float v = t[j];
        if constexpr (DT == DType::F8_E4M3) v *= fp8_scale(w, w.row0 + n0 + r, w.col0 + k0 + k + j);
        dst[(k + j) * kNR + r] = v;
      }
    }
  }
}

template <DType DT>
void gemm(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
          Precision p) {
  const int64_t N = w.rows, K = w.cols, panels = (N + kNR - 1) / kNR;
  thread_local Scratch xs;
  if (p == Precision::BF16) round_bf16_rows(x, ldx, M, K, xs);
  const int64_t maxkc = std::min(kKc, K);
  parallel_run(threads_for(M * N * K, N * K * int64_t(dtype_size(DT))), [&](int t, int nt) {
    int64_t p0 = 0, p1 = panels, m0 = 0, m1 = M;
    if (panels >= 2 * nt) std::tie(p0, p1) = split_range(panels, t, nt);
    else std::tie(m0, m1) = split_range(M, t, nt, kMR);
    thread_local Scratch ps;
    float* pbuf = ps.get<float>(size_t(kNC * maxkc));
    for (int64_t c0 = p0; c0 < p1; c0 += kNC / kNR) {
      const int64_t c1 = std::min(p1, c0 + kNC / kNR);
      for (int64_t k0 = 0; k0 < K; k0 += kKc) {
        const int64_t kc = std::min(kKc, K - k0);
        for (int64_t j = c0; j < c1; ++j)
          pack<DT>(w, j * kNR, std::min<int64_t>(kNR, N - j * kNR), k0, kc,
                   pbuf + (j - c0) * kc * kNR);
        for (int64_t m = m0; m < m1; m += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, m1 - m);
          for (int64_t j = c0; j < c1; ++j)
            kKernels[mr - 1](x + m * ldx + k0, ldx, pbuf + (j - c0) * kc * kNR, kc,
                             y + m * ldy + j * kNR, ldy, std::min<int64_t>(kNR, N - j * kNR),
                             k0 == 0);
        }
      }
    }
  });
}

// ---- matmul_t ---------------------------------------------------------------------------------

constexpr int kTMT = 6;

template <DType DT, int MT>
void mt_tile(const float* x, int64_t ldx, const uint8_t* w, int64_t wld, int64_t nrows,
             int64_t k0, int64_t kn, const float* colscale, float* y, int64_t ldy, bool first) {
  __m256 acc[MT][2];
  SEEK_UNROLL
  for (int m = 0; m < MT; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t n = 0; n < nrows; ++n) {
    __m256 a, b;
    load16_exact<DT>(w + n * wld, k0, kn, a, b);
    if constexpr (DT == DType::F8_E4M3) {
      a = _mm256_mul_ps(a, _mm256_loadu_ps(colscale));
      b = _mm256_mul_ps(b, _mm256_loadu_ps(colscale + 8));
    }
    SEEK_UNROLL
    for (int m = 0; m < MT; ++m) {
      const __m256 xv = _mm256_broadcast_ss(x + m * ldx + n);
      acc[m][0] = _mm256_fmadd_ps(xv, a, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(xv, b, acc[m][1]);
    }
  }
  SEEK_UNROLL
  for (int m = 0; m < MT; ++m) store16(y + m * ldy + k0, kn, first, acc[m][0], acc[m][1]);
}

template <DType DT>
void matmul_t_dt(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                 int64_t ldy) {
  using TileFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                          int64_t, const float*, float*, int64_t, bool);
  static constexpr TileFn tiles[kTMT] = {mt_tile<DT, 1>, mt_tile<DT, 2>, mt_tile<DT, 3>,
                                         mt_tile<DT, 4>, mt_tile<DT, 5>, mt_tile<DT, 6>};
  const int64_t N = w.rows, K = w.cols, esz = int64_t(dtype_size(DT)), wld = w.ld * esz;
  const int64_t ktiles = (K + 15) / 16;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const int nt = threads_for(M * N * K, N * K * esz);
  const bool split_k = ktiles >= 2 * nt || M < 2 * kTMT;
  parallel_run(nt, [&](int t, int nt) {
    int64_t kt0 = 0, kt1 = ktiles, m0 = 0, m1 = M;
    if (split_k) std::tie(kt0, kt1) = split_range(ktiles, t, nt);
    else std::tie(m0, m1) = split_range(M, t, nt, kTMT);
    float colscale[16] = {};
    for (int64_t kt = kt0; kt < kt1; ++kt) {
      const int64_t k0 = kt * 16, kn = std::min<int64_t>(16, K - k0);
      for (int64_t n = 0; n < N;) {  // row blocks end where an FP8 scale may change
        const int64_t ne = std::min(N, n + 128 - (w.row0 + n) % 128);
        if constexpr (DT == DType::F8_E4M3)
          for (int64_t j = 0; j < kn; ++j) colscale[j] = fp8_scale(w, w.row0 + n, w.col0 + k0 + j);
        for (int64_t m = m0; m < m1; m += kTMT)
          tiles[std::min<int64_t>(kTMT, m1 - m) - 1](x + m * ldx + n, ldx, base + n * wld, wld,
                                                     ne - n, k0, kn, colscale, y + m * ldy, ldy,
                                                     n == 0);
        n = ne;
      }
    }
  });
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  // Two GEMV passes beat packing for a few rows more than the GEMV takes (see avx512::matmul);
  // with 16 registers the 7-8 row GEMV is weak, so only up to 12 (measured: M = 9 1.6x). Its
  // 2·M accumulators spill at 7-8 rows, still 13% faster than two passes of 4 (BF16, K = 4096).
  if (M > kGemvMaxRows && M <= 12) {
    const int64_t half = (M + 1) / 2;
    avx2::matmul(x, half, ldx, w, y, ldy, p);
    return avx2::matmul(x + half * ldx, M - half, ldx, w, y + half * ldy, ldy, p);
  }
  const bool small = M <= kGemvMaxRows;
  switch (w.dtype) {
    case DType::F32:
      return small ? gemv<DType::F32>(x, M, ldx, w, y, ldy, p)
                   : gemm<DType::F32>(x, M, ldx, w, y, ldy, p);
    case DType::BF16:
      return small ? gemv<DType::BF16>(x, M, ldx, w, y, ldy, p)
                   : gemm<DType::BF16>(x, M, ldx, w, y, ldy, p);
    case DType::F16:
      return small ? gemv<DType::F16>(x, M, ldx, w, y, ldy, p)
                   : gemm<DType::F16>(x, M, ldx, w, y, ldy, p);
    case DType::F8_E4M3:
      return small ? gemv<DType::F8_E4M3>(x, M, ldx, w, y, ldy, p)
                   : gemm<DType::F8_E4M3>(x, M, ldx, w, y, ldy, p);
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

}  // namespace seek::kernels::avx2
