// AVX-512 GEMM for many activation rows (prefill): y[M, N] = x[M, K] · W[N, K]ᵀ.
//
// The usual GotoBLAS/BLIS structure, with W playing the part of the packed "B" operand:
//   threads split N (or M when N is narrow)
//   for each chunk of kNC weight rows:
//     for each K block:
//       pack the chunk's rows x K block into panels of 32 rows          (L2-resident)
//       for each tile of 12 activation rows, for each panel:
//         micro-kernel: C[12 x 32] (+)= A[12 x Kblk] · panel            (A in L1, C in 24 zmm)
// Each weight is converted exactly once (while packing), so the conversion cost is amortised
// over M; the micro-kernel only loads two panel vectors and broadcasts 12 activations per step.
//
// Two precisions:
//  * Precision::BF16 with BF16/FP8 weights uses vdpbf16ps, which multiplies pairs of bf16 and
//    accumulates in fp32 (2x the fp32 FMA rate). Activations are rounded to bf16 once (RNE, like
//    ref); a panel stores W as [k/2][32 rows][2] so each 32-bit lane holds the (k, k+1) pair of one
//    row, and an activation pair broadcast to all lanes multiplies 32 rows at once. FP8 codes are
//    exactly representable in bf16 (3 mantissa bits), so weights are not rounded at all: the
//    128x128 block scale is not folded into them but applied per K block in the micro-kernel
//    epilogue (C += acc · s[row]); K blocks therefore end on absolute 128-column boundaries.
//  * Everything else (Precision::F32, and F32/F16 weights, which bf16 cannot hold exactly) uses
//    an fp32 FMA kernel on panels widened to fp32 [k][32]; FP8 is packed as fp32(q·s), the very
//    value WeightView::at gives, so this path is the reference up to summation order.
#include <algorithm>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/matmul_avx512.h"

namespace seek::kernels::avx512 {
namespace {

constexpr int kMR = kGemmMR;
constexpr int kNR = kGemmNR;
constexpr int64_t kNC = 256;     // weight rows packed per chunk: 8 panels, 256 KB in L2
constexpr int64_t kKcF32 = 256;  // K block, fp32 path: 32 KB panel, 12 KB A micro-panel
constexpr int64_t kKcBf16 = 512; // K block, bf16 path (FP8 blocks stop at 128-column edges)

// ---- packing ----------------------------------------------------------------------------------

inline const uint8_t* row_ptr(const WeightView& w, int64_t n) {
  return static_cast<const uint8_t*>(w.data) + n * w.ld * int64_t(dtype_size(w.dtype));
}

// Block scales of 16 columns from view column `col` (the first n valid) of one row.
inline __m512 scale16(const WeightView& w, int64_t row, int64_t col, int64_t n) {
  const float* s = w.scale_inv + ((w.row0 + row) / 128) * w.scale_ld;
  const int64_t c = w.col0 + col;
  if (c / 128 == (c + std::min<int64_t>(n, 16) - 1) / 128) return _mm512_set1_ps(s[c / 128]);
  alignas(64) float l[16] = {};
  for (int64_t j = 0; j < std::min<int64_t>(n, 16); ++j) l[j] = s[(c + j) / 128];
  return _mm512_load_ps(l);
}

// dst[k][32] = W[n0 + r, k0 + k] as fp32 (FP8: fp32(q·s)), rows r >= nr and the tail zero.
template <DType DT>
void pack_f32(const WeightView& w, int64_t n0, int64_t nr, int64_t k0, int64_t kc, float* dst) {
  for (int h = 0; h < 2; ++h)
    for (int64_t k = 0; k < kc; k += 16) {
      __m512i v[16];
      SEEK_UNROLL
      for (int r = 0; r < 16; ++r) {
        const int64_t n = n0 + h * 16 + r;
        if (h * 16 + r >= nr) {
          v[r] = _mm512_setzero_si512();
          continue;
        }
        __m512 f = load16<DT>(row_ptr(w, n), k0 + k, lanes16(kc - k));
        if constexpr (DT == DType::F8_E4M3) f = _mm512_mul_ps(f, scale16(w, n, k0 + k, kc - k));
        v[r] = _mm512_castps_si512(f);
      }
      transpose16(v);
      for (int64_t j = 0; j < 16 && k + j < kc; ++j)
        _mm512_store_si512(dst + (k + j) * kNR + h * 16, v[j]);
    }
}

// Packing reads 32 rows of a weight chunk a K block at a time: dozens of short interleaved
// streams, which the hardware prefetcher does not follow, so every load waited on DRAM (~25% of
// FP8 and BF16 prefill GEMM time went to stalls in packing). Each load asks for the same place in
// the row's next K block, which the next pack of this chunk reads after the micro-kernels ran.
inline void prefetch_next_block(const uint8_t* src, int64_t block_bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(src + block_bytes), _MM_HINT_T1);
}

// dst[p][32] = bf16 pair (W[n0 + r, k0 + 2p], W[n0 + r, k0 + 2p + 1]) for BF16 weights, zero
// past nr rows and past kc columns (an odd kc leaves the last pair's high half zero).
void pack_bf16(const WeightView& w, int64_t n0, int64_t nr, int64_t k0, int64_t kc, uint32_t* dst) {
  const int64_t kp = (kc + 1) / 2;
  for (int h = 0; h < 2; ++h)
    for (int64_t p = 0; p < kp; p += 16) {
      __m512i v[16];
      const __mmask32 valid = lanes32(kc - 2 * p);
      SEEK_UNROLL
      for (int r = 0; r < 16; ++r) {
        v[r] = _mm512_setzero_si512();
        if (h * 16 + r >= nr) continue;
        const uint8_t* src = row_ptr(w, n0 + h * 16 + r) + 2 * (k0 + 2 * p);
        v[r] = _mm512_maskz_loadu_epi16(valid, src);
        prefetch_next_block(src, 2 * kKcBf16);
      }
      transpose16(v);
      for (int64_t j = 0; j < 16 && p + j < kp; ++j)
        _mm512_store_si512(dst + (p + j) * kNR + h * 16, v[j]);
    }
}

inline int64_t fp8_pair_of(int half, int i) { return 8 * (i / 4) + 4 * half + i % 4; }

// The same panel layout from FP8 codes (exact; the block scale is applied by the micro-kernel).
// 64 codes of each of 16 rows are converted into `tmp`, then each half is transposed; the pair
// order the conversion leaves is undone by where the transposed vectors are stored.
void pack_bf16_fp8(const WeightView& w, int64_t n0, int64_t nr, int64_t k0, int64_t kc,
                   uint32_t* dst) {
  const int64_t kp = (kc + 1) / 2;
  alignas(64) uint32_t tmp[16][32];
  for (int h = 0; h < 2; ++h)
    for (int64_t p = 0; p < kp; p += 32) {
      const int64_t n = std::clamp<int64_t>(kc - 2 * p, 0, 64);
      const __mmask64 valid = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
      for (int r = 0; r < 16; ++r) {
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        if (h * 16 + r < nr) {
          const uint8_t* src = row_ptr(w, n0 + h * 16 + r) + k0 + 2 * p;
          fp8x64_to_bf16_pairs(_mm512_maskz_loadu_epi8(valid, src), lo, hi);
          prefetch_next_block(src, 128);
        }
        _mm512_store_si512(tmp[r], lo);
        _mm512_store_si512(tmp[r] + 16, hi);
      }
      for (int half = 0; half < 2; ++half) {
        __m512i v[16];
        SEEK_UNROLL
        for (int r = 0; r < 16; ++r) v[r] = _mm512_load_si512(tmp[r] + 16 * half);
        transpose16(v);
        SEEK_UNROLL
        for (int i = 0; i < 16; ++i)
          if (const int64_t q = p + fp8_pair_of(half, i); q < kp)
            _mm512_store_si512(dst + q * kNR + h * 16, v[i]);
      }
    }
}

// ---- drivers ----------------------------------------------------------------------------------

struct KBlock {
  int64_t k0, len, off;  // view columns [k0, k0 + len); `off` = offset in the packed x (pairs)
};

// Who does what: split the weight rows by whole chunks when there are enough, else the
// activation rows (every thread then packs the same weights, which is cheap next to the math).
struct Work {
  int64_t p0, p1, m0, m1;  // panels [p0, p1), activation rows [m0, m1)
};
Work split_work(int64_t panels, int64_t M, int t, int nt) {
  if (panels >= 2 * nt) {
    const auto [p0, p1] = split_range(panels, t, nt);
    return {p0, p1, 0, M};
  }
  const auto [m0, m1] = split_range(M, t, nt, kMR);
  return {0, panels, m0, m1};
}

template <DType DT>
void gemm_bf16(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
               int64_t ldy) {
  const int64_t N = w.rows, K = w.cols, panels = (N + kNR - 1) / kNR;
  std::vector<KBlock> blocks;
  for (int64_t k = 0, off = 0; k < K;) {
    int64_t len = std::min(kKcBf16, K - k);
    if (DT == DType::F8_E4M3) len = std::min(len, 128 - (w.col0 + k) % 128);
    blocks.push_back({k, len, off});
    off += (len + 1) / 2;
    k += len;
  }
  // Row stride padded by one cache line: with K a multiple of 1024 the 12 rows a micro-kernel
  // broadcasts from would otherwise sit 4 KB apart, all in the same L1 set.
  const int64_t lda = blocks.back().off + (blocks.back().len + 1) / 2 + 16;

  // Activations rounded to bf16 once (RNE), as pairs, each K block padded to an even length.
  thread_local Scratch xs;
  uint32_t* xb = xs.get<uint32_t>(size_t(M * lda));
  for (int64_t m = 0; m < M; ++m)
    for (const KBlock& b : blocks) {
      const float* xr = x + m * ldx + b.k0;
      for (int64_t j = 0; j < b.len; j += 32) {
        const __m512 lo = _mm512_maskz_loadu_ps(lanes16(b.len - j), xr + j);
        const __m512 hi = _mm512_maskz_loadu_ps(lanes16(b.len - j - 16), xr + j + 16);
        _mm512_mask_storeu_epi32(xb + m * lda + b.off + j / 2, lanes16((b.len - j + 1) / 2),
                                 (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      }
    }

  const int64_t maxkp = (std::min(kKcBf16, K) + 1) / 2;
  parallel_run(threads_for(M * N * K, N * K * int64_t(dtype_size(DT))), [&](int t, int nt) {
    const Work wk = split_work(panels, M, t, nt);
    thread_local Scratch ps, ss;
    uint32_t* pbuf = ps.get<uint32_t>(size_t(kNC * maxkp));
    float* sbuf = ss.get<float>(size_t(kNC));
    for (int64_t c0 = wk.p0; c0 < wk.p1; c0 += kNC / kNR) {
      const int64_t c1 = std::min(wk.p1, c0 + kNC / kNR);
      for (size_t bi = 0; bi < blocks.size(); ++bi) {
        const KBlock& b = blocks[bi];
        const int64_t kp = (b.len + 1) / 2;
        for (int64_t j = c0; j < c1; ++j) {
          const int64_t n0 = j * kNR, nr = std::min<int64_t>(kNR, N - n0);
          if constexpr (DT == DType::F8_E4M3)
            pack_bf16_fp8(w, n0, nr, b.k0, b.len, pbuf + (j - c0) * kp * kNR);
          else
            pack_bf16(w, n0, nr, b.k0, b.len, pbuf + (j - c0) * kp * kNR);
          if (DT == DType::F8_E4M3)
            for (int64_t r = 0; r < kNR; ++r)
              sbuf[(j - c0) * kNR + r] =
                  r < nr ? fp8_scale(w, w.row0 + n0 + r, w.col0 + b.k0) : 0.0f;
        }
        for (int64_t m = wk.m0; m < wk.m1; m += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, wk.m1 - m);
          for (int64_t j = c0; j < c1; ++j) {
            const int64_t n0 = j * kNR, nr = std::min<int64_t>(kNR, N - n0);
            kBf16Kernels[mr - 1](xb + m * lda + b.off, lda, pbuf + (j - c0) * kp * kNR, kp,
                                 y + m * ldy + n0, ldy, lanes16(nr), lanes16(nr - 16),
                                 DT == DType::F8_E4M3 ? sbuf + (j - c0) * kNR : nullptr, bi == 0,
                                 nullptr);
          }
        }
      }
    }
  });
}

template <DType DT>
void gemm_f32(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
              Precision p) {
  const int64_t N = w.rows, K = w.cols, panels = (N + kNR - 1) / kNR;
  thread_local Scratch xs;
  // F32/F16 weights: bf16 activations, exact fp32 products.
  if (p == Precision::BF16) round_bf16_rows(x, ldx, M, K, xs);
  const int64_t maxkc = std::min(kKcF32, K);
  parallel_run(threads_for(M * N * K, N * K * int64_t(dtype_size(DT))), [&](int t, int nt) {
    const Work wk = split_work(panels, M, t, nt);
    thread_local Scratch ps;
    float* pbuf = ps.get<float>(size_t(kNC * maxkc));
    for (int64_t c0 = wk.p0; c0 < wk.p1; c0 += kNC / kNR) {
      const int64_t c1 = std::min(wk.p1, c0 + kNC / kNR);
      for (int64_t k0 = 0; k0 < K; k0 += kKcF32) {
        const int64_t kc = std::min(kKcF32, K - k0);
        for (int64_t j = c0; j < c1; ++j)
          pack_f32<DT>(w, j * kNR, std::min<int64_t>(kNR, N - j * kNR), k0, kc,
                       pbuf + (j - c0) * kc * kNR);
        for (int64_t m = wk.m0; m < wk.m1; m += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, wk.m1 - m);
          for (int64_t j = c0; j < c1; ++j) {
            const int64_t n0 = j * kNR, nr = std::min<int64_t>(kNR, N - n0);
            kF32Kernels[mr - 1](x + m * ldx + k0, ldx, pbuf + (j - c0) * kc * kNR, kc,
                                y + m * ldy + n0, ldy, lanes16(nr), lanes16(nr - 16), k0 == 0);
          }
        }
      }
    }
  });
}

}  // namespace

void gemm(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
          Precision p) {
  const bool bf16_dot = p == Precision::BF16;
  switch (w.dtype) {
    case DType::F32: return gemm_f32<DType::F32>(x, M, ldx, w, y, ldy, p);
    case DType::F16: return gemm_f32<DType::F16>(x, M, ldx, w, y, ldy, p);
    case DType::BF16:
      return bf16_dot ? gemm_bf16<DType::BF16>(x, M, ldx, w, y, ldy)
                      : gemm_f32<DType::BF16>(x, M, ldx, w, y, ldy, p);
    case DType::F8_E4M3:
      return bf16_dot ? gemm_bf16<DType::F8_E4M3>(x, M, ldx, w, y, ldy)
                      : gemm_f32<DType::F8_E4M3>(x, M, ldx, w, y, ldy, p);
    default: return portable::matmul(x, M, ldx, w, y, ldy, p);
  }
}

}  // namespace seek::kernels::avx512
