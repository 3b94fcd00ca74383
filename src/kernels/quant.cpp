// GGML block formats: reference (de)quantizers and the scalar integer dot of quantized matmuls.
// Byte offsets inside a block are spelled out (no structs): GGUF tensor data is only 32-byte
// aligned and a block_q4_K starts every 144 bytes, so blocks are read with memcpy, never through a
// cast pointer.
#include "kernels/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace seek::kernels {
namespace {

constexpr int64_t kQK = 256;  // elements of a K-quant superblock

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
void store_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_f16(f);
  std::memcpy(p, &h, 2);
}

// Round half to even for |v| < 2^22: adding 1.5·2^23 puts the rounded integer in the low mantissa
// bits (the FPU does the rounding). ggml's quantizers round this way, so ours must too.
int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

void check_n(DType t, int64_t n, const char* what) {
  if (!dtype_is_blocked(t)) fail("{}: {} is not a block-quantized dtype", what, dtype_name(t));
  if (n < 0 || n % dtype_block(t) != 0)
    fail("{}: {} elements are not whole {} blocks of {}", what, n, dtype_name(t), dtype_block(t));
}

// ---- Q8_0, Q4_0: one f16 scale per 32 --------------------------------------------------------

void quantize_q8_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
  }
}

// d = (signed value of largest magnitude) / -8, so that value lands on code 0 (-8 · d) and the
// codes use the asymmetric range [-8, 7] fully; codes are truncated after adding 8.5.
void quantize_q4_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[16 + j] * id + 8.5f)));
      y[2 + j] = uint8_t(lo | hi << 4);
    }
  }
}

// ---- Q4_K: 8 sub-blocks of 32, each x ≈ d·sc_j·n - dmin·m_j with 6-bit sc_j, m_j ---------------

// Scale and min of one sub-block for codes 0..nmax by weighted least squares over a grid of
// candidate scales (llama.cpp's make_qkx2_quants): start from (max - min) / nmax, try
// (nmax + rmin + rdelta·is) / (max - min) for is = 0..nstep, keep the lowest weighted squared
// error. Returns the scale, *neg_min = -min (>= 0: the min is never above 0).
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = uint8_t(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t Laux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = uint8_t(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        err += w[i] * (diff * diff);
      }
      if (err < best_error) {
        std::copy_n(Laux, n, L);
        best_error = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

void quantize_q4_K(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK, y += 144) {
    uint8_t L[kQK];
    float scales[8], mins[8], weights[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      const float* xj = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xj[l]);
      scales[j] = fit_scale_min(32, 15, xj, weights, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    // The sub-block scales and mins as 6-bit multiples of d = max_scale/63, dmin = max_min/63.
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* s = y + 4;
    std::memset(s, 0, 12);
    for (int j = 0; j < 8; ++j) {
      const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
      const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
      if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
      } else {
        s[j + 4] = uint8_t((ls & 0xF) | (lm & 0xF) << 4);
        s[j - 4] |= uint8_t((ls >> 4) << 6);
        s[j] |= uint8_t((lm >> 4) << 6);
      }
    }
    store_f16(y, max_scale / 63.f);
    store_f16(y + 2, max_min / 63.f);
    // Requantize against the scales as stored (a zero scale keeps the fit's codes).
    const float d_all = load_f16(y), dmin_all = load_f16(y + 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      q4k_scale_min(s, j, &sc, &m);
      const float d = d_all * sc;
      if (d == 0.0f) continue;
      const float dm = dmin_all * m;
      for (int l = 0; l < 32; ++l)
        L[32 * j + l] = uint8_t(std::clamp(nearest_int((x[32 * j + l] + dm) / d), 0, 15));
    }
    // 64 elements per 32 bytes: the first 32 in the low nibbles, the next 32 in the high.
    uint8_t* q = y + 16;
    for (int j = 0; j < kQK; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | L[j + l + 32] << 4);
  }
}

// ---- Q6_K: 16 sub-blocks of 16, x ≈ d·sc_j·(q - 32) with int8 sc_j, 6-bit q -------------------

// A symmetric scale for codes -nmax..nmax-1 (llama.cpp's make_qx_quants, rmse_type 1: weights
// x²): the least-squares scale for the codes of -nmax/max, then of 19 nearby scales, the best
// kept. L gets codes + nmax.
float fit_scale_sym(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = int8_t(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void quantize_q6_K(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK, y += 210) {
    int8_t L[kQK];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_scale_sym(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < 1e-15f) {
      std::memset(y, 0, 210);
      continue;
    }
    // Sub-block scales as int8 multiples of d, the largest at -128 (so d takes its sign).
    const float iscale = -128.f / max_scale;
    store_f16(y + 208, 1 / iscale);
    int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
    for (int ib = 0; ib < 16; ++ib) sc[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    const float d_all = load_f16(y + 208);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * sc[j];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = int8_t(std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
    }
    // Per 128 elements: low nibbles of 0..31 | 64..95 share ql[0..31] (low | high nibble),
    // 32..63 | 96..127 share ql[32..63]; qh[l] holds the top two bits of l, l+32, l+64, l+96.
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    for (int j = 0; j < kQK; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = uint8_t((q1 & 0xF) | (q3 & 0xF) << 4);
        ql[l + 32] = uint8_t((q2 & 0xF) | (q4 & 0xF) << 4);
        qh[l] = uint8_t((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
      }
  }
}

// The 6-bit codes 0..63 of one block_q6_K in element order.
void unpack_q6_K(const uint8_t* b, uint8_t* q) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  for (int n = 0; n < kQK; n += 128, ql += 64, qh += 32)
    for (int l = 0; l < 32; ++l) {
      q[n + l] = uint8_t((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4);
      q[n + l + 32] = uint8_t((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4);
      q[n + l + 64] = uint8_t((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
      q[n + l + 96] = uint8_t((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
    }
}

// The nibbles 0..15 of one block_q4_K in element order.
void unpack_q4_K(const uint8_t* b, uint8_t* q) {
  const uint8_t* qs = b + 16;
  for (int n = 0; n < kQK; n += 64, qs += 32)
    for (int l = 0; l < 32; ++l) {
      q[n + l] = qs[l] & 0xF;
      q[n + l + 32] = qs[l] >> 4;
    }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  check_n(t, n, "dequantize_row");
  const uint8_t* b = static_cast<const uint8_t*>(src);
  const int64_t nb = n / dtype_block(t);
  switch (t) {
    case DType::Q8_0:
      for (int64_t i = 0; i < nb; ++i, b += 34, dst += 32) {
        const float d = load_f16(b);
        for (int j = 0; j < 32; ++j) dst[j] = float(int8_t(b[2 + j])) * d;
      }
      break;
    case DType::Q4_0:
      for (int64_t i = 0; i < nb; ++i, b += 18, dst += 32) {
        const float d = load_f16(b);
        for (int j = 0; j < 16; ++j) {
          dst[j] = float((b[2 + j] & 0xF) - 8) * d;
          dst[j + 16] = float((b[2 + j] >> 4) - 8) * d;
        }
      }
      break;
    case DType::Q4_K:
      for (int64_t i = 0; i < nb; ++i, b += 144, dst += kQK) {
        const float d = load_f16(b), dmin = load_f16(b + 2);
        uint8_t q[kQK];
        unpack_q4_K(b, q);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          q4k_scale_min(b + 4, j, &sc, &m);
          const float dj = d * sc, mj = dmin * m;
          for (int l = 0; l < 32; ++l) dst[32 * j + l] = dj * q[32 * j + l] - mj;
        }
      }
      break;
    case DType::Q6_K:
      for (int64_t i = 0; i < nb; ++i, b += 210, dst += kQK) {
        const float d = load_f16(b + 208);
        uint8_t q[kQK];
        unpack_q6_K(b, q);
        for (int e = 0; e < kQK; ++e) dst[e] = d * float(int8_t(b[192 + e / 16])) * (q[e] - 32);
      }
      break;
    default: break;
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  check_n(t, n, "quantize_row");
  uint8_t* y = static_cast<uint8_t*>(dst);
  const int64_t nb = n / dtype_block(t);
  switch (t) {
    case DType::Q8_0: return quantize_q8_0(src, y, nb);
    case DType::Q4_0: return quantize_q4_0(src, y, nb);
    case DType::Q4_K: return quantize_q4_K(src, y, nb);
    case DType::Q6_K: return quantize_q6_K(src, y, nb);
    default: break;
  }
}

int64_t act_block(DType t) { return t == DType::Q4_K || t == DType::Q6_K ? 256 : 32; }

void quantize_acts(DType t, const float* x, int64_t M, int64_t ldx, int64_t K, QuantizedActs& a) {
  const int64_t blk = act_block(t);
  if (K % blk != 0) fail("matmul: {} columns are not whole {} blocks", K, dtype_name(t));
  a.M = M;
  a.K = K;
  a.block = blk;
  a.q.resize(size_t(M * K));
  a.d.resize(size_t(M * (K / blk)));
  a.sum16.resize(size_t(M * (K / 16)));
  for (int64_t m = 0; m < M; ++m) {
    const float* xm = x + m * ldx;
    int8_t* q = a.q.data() + m * K;
    for (int64_t b = 0; b < K / blk; ++b) {
      float amax = 0.0f;
      for (int64_t k = b * blk; k < (b + 1) * blk; ++k) amax = std::max(amax, std::fabs(xm[k]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      a.d[size_t(m * (K / blk) + b)] = d;
      for (int64_t k = b * blk; k < (b + 1) * blk; ++k)
        q[k] = int8_t(std::clamp(nearest_int(xm[k] * id), -127, 127));
    }
    int16_t* s = a.sum16.data() + m * (K / 16);
    for (int64_t g = 0; g < K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[16 * g + i];
      s[g] = int16_t(sum);
    }
  }
}

float quant_dot(DType t, const void* w, const QuantizedActs& a, int64_t m) {
  const uint8_t* b = static_cast<const uint8_t*>(w);
  const int8_t* x = a.q_row(m);
  const float* dx = a.d_row(m);
  const int16_t* s16 = a.sum16_row(m);
  const int64_t nb = a.K / dtype_block(t);
  float acc = 0.0f;
  switch (t) {
    case DType::Q8_0:
      for (int64_t i = 0; i < nb; ++i, b += 34, x += 32) {
        int32_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += int8_t(b[2 + j]) * x[j];
        acc += (load_f16(b) * dx[i]) * float(isum);
      }
      break;
    case DType::Q4_0:
      for (int64_t i = 0; i < nb; ++i, b += 18, x += 32) {
        int32_t isum = 0;
        for (int j = 0; j < 16; ++j)
          isum += ((b[2 + j] & 0xF) - 8) * x[j] + ((b[2 + j] >> 4) - 8) * x[j + 16];
        acc += (load_f16(b) * dx[i]) * float(isum);
      }
      break;
    case DType::Q4_K:
      for (int64_t i = 0; i < nb; ++i, b += 144, x += kQK, s16 += 16) {
        uint8_t q[kQK];
        unpack_q4_K(b, q);
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, mn;
          q4k_scale_min(b + 4, j, &sc, &mn);
          int32_t dot = 0;
          for (int l = 0; l < 32; ++l) dot += q[32 * j + l] * x[32 * j + l];
          isum += sc * dot;
          imin += mn * (s16[2 * j] + s16[2 * j + 1]);
        }
        acc += (load_f16(b) * dx[i]) * float(isum) - (load_f16(b + 2) * dx[i]) * float(imin);
      }
      break;
    case DType::Q6_K:
      for (int64_t i = 0; i < nb; ++i, b += 210, x += kQK, s16 += 16) {
        uint8_t q[kQK];
        unpack_q6_K(b, q);
        int32_t isum = 0;
        for (int j = 0; j < 16; ++j) {
          int32_t dot = 0;
          for (int l = 0; l < 16; ++l) dot += q[16 * j + l] * x[16 * j + l];
          isum += int8_t(b[192 + j]) * (dot - 32 * s16[j]);
        }
        acc += (load_f16(b + 208) * dx[i]) * float(isum);
      }
      break;
    default: fail("matmul: {} is not a block-quantized dtype", dtype_name(t));
  }
  return acc;
}

}  // namespace seek::kernels
