#include "kernels/fp8.h"

#include <array>

#include <omp.h>

namespace seek::kernels {

namespace {

constexpr int64_t kParallelMin = 1 << 16;  // elements worth a parallel region

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// amax of |x| over n values, on the bit patterns: non-negative floats order like their bits (an
// integer max reduction vectorizes; a float one would need -ffast-math).
inline uint32_t amax_bits(const float* x, int64_t n, uint32_t m = 0) {
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu);
  return m;
}

inline float scale_of(uint32_t amax) {
  const float s = std::bit_cast<float>(amax) / 448.0f;
  return s > 0.0f ? s : 1.0f;
}

// One row of blocks: w [nr ≤ 128, cols] (row stride cols) → codes [nr, cols], scale_inv
// [ceil(cols/128)].
void quantize_row_block(const float* w, int64_t nr, int64_t cols, uint8_t* q, float* s) {
  for (int64_t c0 = 0, cb = 0; c0 < cols; c0 += kFp8Block, ++cb) {
    const int64_t nc = std::min(kFp8Block, cols - c0);
    uint32_t amax = 0;
    for (int64_t r = 0; r < nr; ++r) amax = amax_bits(w + r * cols + c0, nc, amax);
    const float scale = scale_of(amax);
    s[cb] = scale;
    for (int64_t r = 0; r < nr; ++r) {
      const float* wr = w + r * cols + c0;
      uint8_t* qr = q + r * cols + c0;
      for (int64_t c = 0; c < nc; ++c) qr[c] = e4m3_rne(wr[c] / scale);  // as the release: w / S
    }
  }
}

}  // namespace

void quantize_fp8_blocks(const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                         float* scale_inv) {
  const int64_t nrb = ceil_div(rows, kFp8Block), ncb = ceil_div(cols, kFp8Block);
#pragma omp parallel for schedule(dynamic) if (nrb > 1 && rows * cols >= kParallelMin)
  for (int64_t rb = 0; rb < nrb; ++rb)
    quantize_row_block(w + rb * kFp8Block * cols, std::min(kFp8Block, rows - rb * kFp8Block),
                       cols, codes + rb * kFp8Block * cols, scale_inv + rb * ncb);
}

void quantize_fp8_operand(const float* src, int64_t ld, bool transposed, int64_t rows, int64_t K,
                          Fp8Scaling scaling, Fp8Operand& out) {
  out.rows = rows;
  out.K = K;
  out.kblocks = ceil_div(K, kFp8Block);
  out.codes.resize(size_t(rows * K));
  out.scale.resize(size_t(rows * out.kblocks));
  // Row-major values: the source itself, or its transpose gathered once.
  std::vector<float> gathered;
  const float* x = src;
  int64_t ldx = ld;
  if (transposed) {
    gathered.resize(size_t(rows * K));
#pragma omp parallel for schedule(static) if (rows * K >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < K; ++k) gathered[size_t(r * K + k)] = src[k * ld + r];
    x = gathered.data();
    ldx = K;
  }
  const int64_t group = scaling == Fp8Scaling::Block ? kFp8Block : 1;  // rows sharing a scale
  const int64_t ngroups = ceil_div(rows, group);
#pragma omp parallel for schedule(static) if (rows * K >= kParallelMin)
  for (int64_t gi = 0; gi < ngroups; ++gi) {
    const int64_t r0 = gi * group, nr = std::min(group, rows - r0);
    for (int64_t kb = 0; kb < out.kblocks; ++kb) {
      const int64_t k0 = kb * kFp8Block, nk = std::min(kFp8Block, K - k0);
      uint32_t amax = 0;
      for (int64_t r = r0; r < r0 + nr; ++r) amax = amax_bits(x + r * ldx + k0, nk, amax);
      const float scale = scale_of(amax);
      for (int64_t r = r0; r < r0 + nr; ++r) {
        out.scale[size_t(r * out.kblocks + kb)] = scale;
        const float* xr = x + r * ldx + k0;
        uint8_t* q = out.codes.data() + r * K + k0;
        for (int64_t k = 0; k < nk; ++k) q[k] = e4m3_rne(xr[k] / scale);
      }
    }
  }
}

void dequantize_fp8_operand(const Fp8Operand& x, float* dst) {
  // The 256 code values once (the decode is a table lookup and a multiply per value).
  static const std::array<float, 256> value = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c) v[size_t(c)] = fp8_e4m3_to_f32(uint8_t(c));
    return v;
  }();
#pragma omp parallel for schedule(static) if (x.rows * x.K >= kParallelMin)
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t kb = 0; kb < x.kblocks; ++kb) {
      const float S = x.scale[size_t(r * x.kblocks + kb)];
      const int64_t k0 = kb * kFp8Block, k1 = std::min(x.K, k0 + kFp8Block);
      const uint8_t* q = x.codes.data() + r * x.K;
      float* d = dst + r * x.K;
      for (int64_t k = k0; k < k1; ++k) d[k] = value[q[k]] * S;
    }
}

}  // namespace seek::kernels
