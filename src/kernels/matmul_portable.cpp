// Portable matrix products for CPUs without AVX2 (and the Isa::Scalar setting): the reference
// semantics, but each weight row is dequantized once into an fp32 buffer and the inner loops are
// plain enough for the compiler to vectorize for the x86-64-v2 baseline. Threaded like the SIMD
// variants so a fallback machine is slow, not unusable.
#include <algorithm>
#include <array>

#include "kernels/matmul_internal.h"

namespace seek::kernels::portable {
namespace {

const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> v{};
    for (int i = 0; i < 256; ++i) v[i] = fp8_e4m3_to_f32(uint8_t(i));
    return v;
  }();
  return t;
}

// out[j] = W[n, k0 + j] for j < len (exactly WeightView::at, in bulk).
void dequant_row(const WeightView& w, int64_t n, int64_t k0, int64_t len, float* out) {
  const int64_t idx = n * w.ld + k0;
  switch (w.dtype) {
    case DType::F32: std::copy_n(static_cast<const float*>(w.data) + idx, len, out); break;
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + idx;
      for (int64_t j = 0; j < len; ++j) out[j] = bf16_to_f32(p[j]);
      break;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + idx;
      for (int64_t j = 0; j < len; ++j) out[j] = f16_to_f32(p[j]);
      break;
    }
    case DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + idx;
      const auto& t = fp8_table();
      for (int64_t j = 0; j < len;) {  // one scale per 128-column block
        const int64_t je = std::min(len, j + 128 - (w.col0 + k0 + j) % 128);
        const float s = fp8_scale(w, w.row0 + n, w.col0 + k0 + j);
        for (; j < je; ++j) out[j] = t[p[j]] * s;
      }
      break;
    }
    default: break;
  }
}

// Eight independent partial sums let the compiler use SIMD without reassociating a single sum.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  for (; k < n; ++k) acc[0] += a[k] * b[k];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  const int64_t N = w.rows, K = w.cols;
  thread_local Scratch xs;
  if (p == Precision::BF16) round_bf16_rows(x, ldx, M, K, xs);
  parallel_run(threads_for(M * N * K, N * K * int64_t(dtype_size(w.dtype))), [&](int t, int nt) {
    const auto [n0, n1] = split_range(N, t, nt, 16);
    thread_local Scratch rs;
    float* row = rs.get<float>(size_t(K));
    for (int64_t n = n0; n < n1; ++n) {
      dequant_row(w, n, 0, K, row);
      for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = dot(x + m * ldx, row, K);
    }
  });
}

void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  const int64_t N = w.rows, K = w.cols;
  parallel_run(threads_for(M * N * K, N * K * int64_t(dtype_size(w.dtype))), [&](int t, int nt) {
    const auto [k0, k1] = split_range(K, t, nt, 16);  // each thread owns output columns
    thread_local Scratch rs;
    float* row = rs.get<float>(size_t(K));
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + k0, y + m * ldy + k1, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      dequant_row(w, n, k0, k1 - k0, row);
      for (int64_t m = 0; m < M; ++m) {
        const float xv = x[m * ldx + n];
        float* ym = y + m * ldy + k0;
        for (int64_t j = 0; j < k1 - k0; ++j) ym[j] += xv * row[j];
      }
    }
  });
}

// Block-quantized weights: quant_dot, the reference itself, threaded over output rows.
void matmul_quant(const QuantizedActs& x, const WeightView& w, float* y, int64_t ldy) {
  const int64_t M = x.M, N = w.rows;
  const int64_t row_bytes = dtype_bytes(w.dtype, w.ld);
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  parallel_run(threads_for(M * N * w.cols, N * dtype_bytes(w.dtype, w.cols)), [&](int t, int nt) {
    const auto [n0, n1] = split_range(N, t, nt, 16);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = quant_dot(w.dtype, base + n * row_bytes, x, m);
  });
}

}  // namespace seek::kernels::portable
