// AVX-512 VNNI GEMM for block-quantized weights and many activation rows (prefill):
// y[M, N] = x̂[M, K] · Wᵀ with x̂ the int8 activations of quant.h, exactly quant_dot's integers.
//
// The GEMV (matmul_quant_x86.h) dots one weight row with a few activation rows along K: every
// 32 weights need their own vector, their own float scaling and, per activation row, a
// horizontal sum at the end, and a weight block is unpacked once per 4 rows of x. Here weights
// are repacked so that a vector's 16 int32 lanes are 16 *weight rows* (a panel) and each lane
// holds 4 consecutive k of its row: one vpdpbusd then multiplies 16 rows by 4 activations of one
// row of x, broadcast to every lane, and the per-block scales become vectors of 16 row scales.
// No horizontal sums, and every packed weight is reused by all M rows from L1/L2 (GotoBLAS
// blocking: chunks of kNC rows, K blocks of kKC, micro-tiles of kMR activation rows × kNP panels
// with their accumulators in registers).
//
// Two families, after packing:
//  * Q8_0, Q4_0 (a scale per 32): codes stored unsigned, c = w + o (o = 128 for Q8_0's signed
//    codes, o = 8 for Q4_0's nibbles, whose value is n - 8), so vpdpbusd (u8 · s8) computes
//    Σ c·x = Σ w·x + o·Σx; the int32 accumulator of each block starts at -o·Σx (from the
//    activation's 16-sums, one vpdpwssd), so it ends at quant_dot's integer sum exactly. Then
//    y += (d_w · d_x) · sum, as quant_dot.
//  * Q4_K, Q6_K (256-superblocks with small integer sub-block scales): codes unsigned (nibbles,
//    6-bit codes), vpmaddubsw makes int16 pair sums and vpdpwssd weights them by each row's
//    sub-block scale into int32, so a superblock's Σ_j sc_j Σ c·x is exact in one accumulator;
//    the offsets (Q4_K's mins, Q6_K's -32) are Σ_j t_j · Σ_{i∈j} x_i with t per row, from the
//    activation's 16-sums (vpdpwssd again). y += (d·d_x)·sum + (d'·d_x)·offsets, where d' is
//    Q4_K's dmin (t = -m) or Q6_K's d (t = -32·sc).
// quant_dot's integers are reproduced exactly; only the fp32 scaling differs (an FMA).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>

#include "kernels/matmul_internal.h"
#include "kernels/matmul_avx512.h"
#include "kernels/quant_x86.h"

namespace seek::kernels::avx512 {
namespace {

constexpr int kLanes = 16;        // weight rows per panel (int32 lanes of a zmm)
constexpr int kMR = 6;            // activation rows per micro-tile
constexpr int kNP = 2;            // panels per micro-tile (kMR·kNP int32 + as many fp32 accs)
constexpr int64_t kKC = 512;      // K block: two panels' codes (16 KB) stay in L1
constexpr int64_t kNC = 256;      // weight rows per chunk: 16 panels, ~200 KB packed, in L2

inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// ---- the packed panel -----------------------------------------------------------------------
// One panel of 16 weight rows over a K block of kc columns (kc a multiple of the dtype's block),
// as 64-byte vectors, lane r = row r:
//   codes  [kc/4]         4 unsigned codes (k = 4q .. 4q+3) per lane
//   Q8_0/Q4_0:  scale [kc/32]  fp32 d_w
//   Q4_K/Q6_K:  sub   [kc/L]   int32 sc_j, L = 32 (Q4_K) or 16 (Q6_K)
//               d     [kc/256] fp32 d;  d2 [kc/256] fp32 (dmin, or d);
//               off   [kc/256 · 8]  int16 pairs (t_{2i}, t_{2i+1}) against the activation's
//                     16-sums s16[2i], s16[2i+1] (Q4_K: t = -m_i for both; Q6_K: t = -32·sc)
struct Layout {
  bool super;       // Q4_K / Q6_K
  int sub;          // L: elements per sub-block scale (32 or 16); 32 for the 32-block types
  int16_t offset;   // o of the 32-block types
  int64_t kc;
  int64_t codes() const { return 0; }
  int64_t scales() const { return 16 * kc; }  // `scale` or `sub`
  int64_t d() const { return scales() + 64 * (kc / sub); }
  int64_t d2() const { return d() + 64 * (kc / 256); }
  int64_t off() const { return d2() + 64 * (kc / 256); }
  int64_t bytes() const { return super ? off() + 512 * (kc / 256) : scales() + 64 * (kc / 32); }
};

Layout layout_for(DType t, int64_t kc) {
  switch (t) {
    case DType::Q8_0: return {false, 32, 128, kc};
    case DType::Q4_0: return {false, 32, 8, kc};
    case DType::Q4_K: return {true, 32, 0, kc};
    default: return {true, 16, 0, kc};  // Q6_K
  }
}

// One weight row's blocks [from the K block's start, kc columns) -> its unsigned codes in `c`
// (element order) and its lane r of the fp32 scale vectors in `p` (the panel).
void unpack_row(DType t, const uint8_t* b, int64_t kc, int r, const Layout& L, uint8_t* c,
                uint8_t* p) {
  auto f32_at = [&](int64_t off, int64_t vec) -> float& {
    return reinterpret_cast<float*>(p + off)[vec * kLanes + r];
  };
  const __m256i low4 = _mm256_set1_epi8(0xF);
  switch (t) {
    case DType::Q8_0:
      for (int64_t i = 0; i < kc / 32; ++i, b += 34, c += 32) {
        f32_at(L.scales(), i) = f16(b);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c),
                            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)),
                                             _mm256_set1_epi8(char(0x80))));
      }
      break;
    case DType::Q4_0:
      for (int64_t i = 0; i < kc / 32; ++i, b += 18, c += 32) {
        f32_at(L.scales(), i) = f16(b);
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c),
                            _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4));
      }
      break;
    case DType::Q4_K:
      for (int64_t i = 0; i < kc / 256; ++i, b += 144, c += 256) {
        f32_at(L.d(), i) = f16(b);
        f32_at(L.d2(), i) = f16(b + 2);
        for (int q = 0; q < 4; ++q) {  // 32 bytes: elements 64q.. in the low nibbles, +32 high
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * q));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 64 * q), _mm256_and_si256(v, low4));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 64 * q + 32),
                              _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
        }
      }
      break;
    default:  // Q6_K
      for (int64_t i = 0; i < kc / 256; ++i, b += 210, c += 256) {
        const float d = f16(b + 208);
        f32_at(L.d(), i) = d;
        f32_at(L.d2(), i) = d;
        for (int h = 0; h < 2; ++h) {  // 128 elements from 64 bytes of ql and 32 of qh
          const uint8_t* ql = b + 64 * h;
          __m256i u[4];
          q6k_codes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql)),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32)),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h)), u);
          for (int g = 0; g < 4; ++g)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 128 * h + 32 * g), u[g]);
        }
      }
      break;
  }
}

// The integer scale vectors of Q4_K / Q6_K superblock i for one row, as 16 int32 lanes that a
// 16 x 16 transpose turns into per-row lanes:
//   Q4_K: lanes 0..7 sc_j, lanes 8..15 the offset pairs (-m_j, -m_j);
//   Q6_K: `sc` gets sc_0..15; `off` the pairs (-32·sc_2i, -32·sc_2i+1), 8 lanes.
inline __m512i q4k_row_scales(const uint8_t* b) {
  const __m128i scm = q4k_scales_mins(b + 4);  // bytes sc_0..7, m_0..7
  const __m128i neg_m = _mm_sub_epi16(_mm_setzero_si128(), _mm_cvtepu8_epi16(_mm_srli_si128(scm, 8)));
  const __m256i off = _mm256_set_m128i(_mm_unpackhi_epi16(neg_m, neg_m), _mm_unpacklo_epi16(neg_m, neg_m));
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_cvtepu8_epi32(scm)), off, 1);
}
inline __m256i q6k_row_offsets(const uint8_t* b) {
  const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
  return _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc, 5));
}

// Q4_K / Q6_K: the `sub` and `off` vectors of a panel, from rows' superblocks (`row(r)` points at
// row r's first superblock of the K block, nullptr past the panel's rows).
template <class RowPtr>
void pack_super_scales(DType t, int64_t nsb, const Layout& L, RowPtr row, uint8_t* p) {
  const int64_t bytes = t == DType::Q4_K ? 144 : 210;
  auto store = [&](__m512i (&v)[16], int64_t off, int64_t first, int n) {
    transpose16(v);
    for (int j = 0; j < n; ++j) _mm512_store_si512(p + off + (first + j) * 64, v[j]);
  };
  for (int64_t i = 0; i < nsb; ++i) {
    __m512i v[16];
    if (t == DType::Q4_K) {
      SEEK_UNROLL for (int r = 0; r < 16; ++r) {
        const uint8_t* b = row(r);
        v[r] = b ? q4k_row_scales(b + i * bytes) : _mm512_setzero_si512();
      }
      transpose16(v);
      for (int j = 0; j < 8; ++j) {  // lanes 0..7 were sc_j, 8..15 the offsets
        _mm512_store_si512(p + L.scales() + (8 * i + j) * 64, v[j]);
        _mm512_store_si512(p + L.off() + (8 * i + j) * 64, v[8 + j]);
      }
      continue;
    }
    SEEK_UNROLL for (int r = 0; r < 16; ++r) {
      const uint8_t* b = row(r);
      v[r] = b ? _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i * bytes + 192)))
               : _mm512_setzero_si512();
    }
    store(v, L.scales(), 16 * i, 16);
    // Offsets of superblocks i and i + 1 together (lanes 0..7 and 8..15).
    if (i % 2) continue;
    SEEK_UNROLL for (int r = 0; r < 16; ++r) {
      const uint8_t* b = row(r);
      const __m256i lo = b ? q6k_row_offsets(b + i * bytes) : _mm256_setzero_si256();
      const __m256i hi = b && i + 1 < nsb ? q6k_row_offsets(b + (i + 1) * bytes) : _mm256_setzero_si256();
      v[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    store(v, L.off(), 8 * i, i + 1 < nsb ? 16 : 8);
  }
}

// Packs weight rows [n0, n0 + nr) (nr <= 16; missing rows are zero) over view columns
// [k0, k0 + kc) into `p`. `tmp` holds 16 rows of kc codes.
void pack_panel(const WeightView& w, int64_t n0, int64_t nr, int64_t k0, const Layout& L,
                uint8_t* tmp, uint8_t* p) {
  const int64_t kc = L.kc, row_bytes = dtype_bytes(w.dtype, w.ld);
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, k0);
  auto row = [&](int r) { return r < nr ? base + (n0 + r) * row_bytes : nullptr; };
  std::memset(p + L.scales(), 0, size_t(L.bytes() - L.scales()));
  for (int r = 0; r < kLanes; ++r) {
    if (r < nr)
      unpack_row(w.dtype, row(r), kc, r, L, tmp + r * kc, p);
    else
      std::memset(tmp + r * kc, 0, size_t(kc));
  }
  if (L.super) pack_super_scales(w.dtype, kc / 256, L, row, p);
  // codes[q][r] = row r's 4 codes at 4q: a 16 x 16 transpose of int32 per 64 columns.
  for (int64_t k = 0; k < kc; k += 64) {
    __m512i v[16];
    SEEK_UNROLL for (int r = 0; r < 16; ++r) v[r] = _mm512_loadu_si512(tmp + r * kc + k);
    transpose16(v);
    const int64_t quads = std::min<int64_t>(16, (kc - k) / 4);  // a 32-column tail: 8
    for (int64_t j = 0; j < quads; ++j) _mm512_store_si512(p + (k / 4 + j) * 64, v[j]);
  }
}

// ---- micro-kernels ----------------------------------------------------------------------------

// MR rows of x̂ at a K block's start: codes (stride K), 16-sums (K/16), block scales (K/block).
struct XRows {
  const int8_t* q;
  const int16_t* s16;
  const float* d;
  int64_t K, ld_d;
};

struct Out {
  float* y;
  int64_t ldy;
  __mmask16 valid[kNP];
  bool first;  // the K block starting at column 0: y is written, not accumulated
};

template <int MR, int NP>
inline void load_acc(const Out& o, __m512 (&fa)[MR][NP]) {
  SEEK_UNROLL for (int m = 0; m < MR; ++m) SEEK_UNROLL for (int p = 0; p < NP; ++p)
    fa[m][p] = o.first ? _mm512_setzero_ps()
                       : _mm512_maskz_loadu_ps(o.valid[p], o.y + m * o.ldy + kLanes * p);
}
template <int MR, int NP>
inline void store_acc(const Out& o, const __m512 (&fa)[MR][NP]) {
  SEEK_UNROLL for (int m = 0; m < MR; ++m) SEEK_UNROLL for (int p = 0; p < NP; ++p)
    _mm512_mask_storeu_ps(o.y + m * o.ldy + kLanes * p, o.valid[p], fa[m][p]);
}

// y[MR, 16·NP] (+)= x̂ · panelsᵀ over one K block, Q8_0 / Q4_0.
template <int MR, int NP>
void kernel_32(const XRows& x, const uint8_t* const* panel, const Layout& L, const Out& o) {
  __m512 fa[MR][NP];
  load_acc(o, fa);
  const __m512i neg_o = _mm512_set1_epi16(int16_t(-L.offset));
  for (int64_t b = 0; b < L.kc / 32; ++b) {
    __m512i ia[MR][NP];
    SEEK_UNROLL for (int m = 0; m < MR; ++m) {  // -o · Σx over the block's two 16-sums
      const __m512i s = _mm512_set1_epi32(load32(x.s16 + m * (x.K / 16) + 2 * b));
      const __m512i c = _mm512_dpwssd_epi32(_mm512_setzero_si512(), s, neg_o);
      SEEK_UNROLL for (int p = 0; p < NP; ++p) ia[m][p] = c;
    }
    SEEK_UNROLL for (int q = 0; q < 8; ++q) {
      __m512i wv[NP];
      SEEK_UNROLL for (int p = 0; p < NP; ++p)
        wv[p] = _mm512_load_si512(panel[p] + (8 * b + q) * 64);
      SEEK_UNROLL for (int m = 0; m < MR; ++m) {
        const __m512i xb = _mm512_set1_epi32(load32(x.q + m * x.K + 32 * b + 4 * q));
        SEEK_UNROLL for (int p = 0; p < NP; ++p) ia[m][p] = _mm512_dpbusd_epi32(ia[m][p], wv[p], xb);
      }
    }
    __m512 dw[NP];
    SEEK_UNROLL for (int p = 0; p < NP; ++p)
      dw[p] = _mm512_load_ps(reinterpret_cast<const float*>(panel[p] + L.scales()) + kLanes * b);
    SEEK_UNROLL for (int m = 0; m < MR; ++m) {
      const __m512 dx = _mm512_set1_ps(x.d[m * x.ld_d + b]);
      SEEK_UNROLL for (int p = 0; p < NP; ++p)
        fa[m][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[m][p]), _mm512_mul_ps(dw[p], dx), fa[m][p]);
    }
  }
  store_acc(o, fa);
}

// The same for Q4_K (SUB = 32) and Q6_K (SUB = 16); x's block scale is per 256.
template <int MR, int NP, int SUB>
void kernel_super(const XRows& x, const uint8_t* const* panel, const Layout& L, const Out& o) {
  __m512 fa[MR][NP];
  load_acc(o, fa);
  for (int64_t sb = 0; sb < L.kc / 256; ++sb) {
    __m512i ia[MR][NP];
    SEEK_UNROLL for (int m = 0; m < MR; ++m) SEEK_UNROLL for (int p = 0; p < NP; ++p)
      ia[m][p] = _mm512_setzero_si512();
    for (int j = 0; j < 256 / SUB; ++j) {
      __m512i sc[NP];
      SEEK_UNROLL for (int p = 0; p < NP; ++p)
        sc[p] = _mm512_load_si512(panel[p] + L.scales() + (sb * (256 / SUB) + j) * 64);
      __m512i is[MR][NP];  // the sub-block's Σ c·x
      SEEK_UNROLL for (int q = 0; q < SUB / 4; ++q) {
        const int64_t k = 256 * sb + SUB * j + 4 * q;
        __m512i wv[NP];
        SEEK_UNROLL for (int p = 0; p < NP; ++p) wv[p] = _mm512_load_si512(panel[p] + k * 16);
        SEEK_UNROLL for (int m = 0; m < MR; ++m) {
          const __m512i xb = _mm512_set1_epi32(load32(x.q + m * x.K + k));
          SEEK_UNROLL for (int p = 0; p < NP; ++p)
            is[m][p] = _mm512_dpbusd_epi32(q == 0 ? _mm512_setzero_si512() : is[m][p], wv[p], xb);
        }
      }
      SEEK_UNROLL for (int m = 0; m < MR; ++m) SEEK_UNROLL for (int p = 0; p < NP; ++p)
        ia[m][p] = _mm512_add_epi32(ia[m][p], _mm512_mullo_epi32(is[m][p], sc[p]));
    }
    __m512 dx[MR];
    SEEK_UNROLL for (int m = 0; m < MR; ++m) dx[m] = _mm512_set1_ps(x.d[m * x.ld_d + sb]);
    SEEK_UNROLL for (int p = 0; p < NP; ++p) {
      const __m512 d = _mm512_load_ps(reinterpret_cast<const float*>(panel[p] + L.d()) + kLanes * sb);
      SEEK_UNROLL for (int m = 0; m < MR; ++m) {
        fa[m][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[m][p]), _mm512_mul_ps(d, dx[m]), fa[m][p]);
        ia[m][p] = _mm512_setzero_si512();
      }
    }
    SEEK_UNROLL for (int i = 0; i < 8; ++i) {  // offsets: Σ_i t · (s16[2i], s16[2i+1])
      __m512i t[NP];
      SEEK_UNROLL for (int p = 0; p < NP; ++p)
        t[p] = _mm512_load_si512(panel[p] + L.off() + (8 * sb + i) * 64);
      SEEK_UNROLL for (int m = 0; m < MR; ++m) {
        const __m512i s = _mm512_set1_epi32(load32(x.s16 + m * (x.K / 16) + 16 * sb + 2 * i));
        SEEK_UNROLL for (int p = 0; p < NP; ++p) ia[m][p] = _mm512_dpwssd_epi32(ia[m][p], t[p], s);
      }
    }
    SEEK_UNROLL for (int p = 0; p < NP; ++p) {
      const __m512 d2 = _mm512_load_ps(reinterpret_cast<const float*>(panel[p] + L.d2()) + kLanes * sb);
      SEEK_UNROLL for (int m = 0; m < MR; ++m)
        fa[m][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[m][p]), _mm512_mul_ps(d2, dx[m]), fa[m][p]);
    }
  }
  store_acc(o, fa);
}

using Kernel = void (*)(const XRows&, const uint8_t* const*, const Layout&, const Out&);

template <int NP, int... R>
Kernel kernel_for(DType t, int mr, std::integer_sequence<int, R...>) {
  static constexpr Kernel k32[] = {kernel_32<R + 1, NP>...};
  static constexpr Kernel k4[] = {kernel_super<R + 1, NP, 32>...};
  static constexpr Kernel k6[] = {kernel_super<R + 1, NP, 16>...};
  switch (t) {
    case DType::Q4_K: return k4[mr - 1];
    case DType::Q6_K: return k6[mr - 1];
    default: return k32[mr - 1];
  }
}
template <int NP>
Kernel kernel_for(DType t, int mr) {
  return kernel_for<NP>(t, mr, std::make_integer_sequence<int, kMR>());
}

}  // namespace

void gemm_quant(const QuantizedActs& a, const WeightView& w, float* y, int64_t ldy) {
  const int64_t M = a.M, N = w.rows, K = w.cols, panels = (N + kLanes - 1) / kLanes;
  const int64_t kc_max = std::min(kKC, K);
  const int64_t panel_bytes = layout_for(w.dtype, kc_max).bytes();
  parallel_run(threads_for(M * N * K, N * dtype_bytes(w.dtype, K)), [&](int t, int nt) {
    // Split whole panels when there are enough, else the activation rows (each thread then
    // packs the same weights: O(N·K) next to the O(M·N·K) product).
    int64_t p0 = 0, p1 = panels, m0 = 0, m1 = M;
    if (panels >= 2 * nt)
      std::tie(p0, p1) = split_range(panels, t, nt);
    else
      std::tie(m0, m1) = split_range(M, t, nt, kMR);
    thread_local Scratch packed, codes;
    uint8_t* pbuf = packed.get<uint8_t>(size_t(kNC / kLanes * panel_bytes));
    uint8_t* tmp = codes.get<uint8_t>(size_t(kLanes * kc_max + 64));  // + a tail's over-read
    for (int64_t c0 = p0; c0 < p1; c0 += kNC / kLanes) {
      const int64_t c1 = std::min(p1, c0 + kNC / kLanes);
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const Layout L = layout_for(w.dtype, std::min(kKC, K - k0));
        for (int64_t j = c0; j < c1; ++j)
          pack_panel(w, j * kLanes, std::min<int64_t>(kLanes, N - j * kLanes), k0, L, tmp,
                     pbuf + (j - c0) * L.bytes());
        for (int64_t m = m0; m < m1; m += kMR) {
          const int mr = int(std::min<int64_t>(kMR, m1 - m));
          const XRows x{a.q_row(m) + k0, a.sum16_row(m) + k0 / 16, a.d_row(m) + k0 / a.block, K,
                        K / a.block};
          for (int64_t j = c0; j < c1; j += kNP) {
            const int np = int(std::min<int64_t>(kNP, c1 - j));
            const uint8_t* pp[kNP];
            Out o{y + m * ldy + j * kLanes, ldy, {}, k0 == 0};
            for (int p = 0; p < np; ++p) {
              pp[p] = pbuf + (j + p - c0) * L.bytes();
              o.valid[p] = lanes16(N - (j + p) * kLanes);
            }
            (np == kNP ? kernel_for<kNP>(w.dtype, mr) : kernel_for<1>(w.dtype, mr))(x, pp, L, o);
          }
        }
      }
    }
  });
}

}  // namespace seek::kernels::avx512
