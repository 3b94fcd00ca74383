#include "kernels/matmul.h"

namespace seek::kernels {

WeightView WeightView::slice_rows(int64_t r0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + r0 * ld * int64_t(dtype_size(dtype));
  v.rows = n;
  v.row0 = row0 + r0;
  return v;
}

WeightView WeightView::slice_cols(int64_t c0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + c0 * int64_t(dtype_size(dtype));
  v.cols = n;
  v.col0 = col0 + c0;
  return v;
}

float WeightView::at(int64_t i, int64_t j) const {
  const int64_t idx = i * ld + j;
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[idx];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[idx]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[idx]);
    case DType::F8_E4M3:
      return fp8_e4m3_to_f32(static_cast<const uint8_t*>(data)[idx]) *
             scale_inv[((row0 + i) / 128) * scale_ld + (col0 + j) / 128];
    default: return 0.0f;
  }
}

namespace ref {

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < w.rows; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) {
        float xv = x[m * ldx + k];
        if (p == Precision::BF16) xv = bf16_to_f32(f32_to_bf16(xv));
        acc += xv * w.at(n, k);
      }
      y[m * ldy + n] = acc;
    }
}

void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < w.cols; ++k) {
      float acc = 0.0f;
      for (int64_t n = 0; n < w.rows; ++n) acc += x[m * ldx + n] * w.at(n, k);
      y[m * ldy + k] = acc;
    }
}

}  // namespace ref
}  // namespace seek::kernels
