#include "core/tensor_view.h"

namespace seek {

WeightView WeightView::slice_rows(int64_t r0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + r0 * dtype_bytes(dtype, ld);
  v.rows = n;
  v.row0 = row0 + r0;
  return v;
}

WeightView WeightView::slice_cols(int64_t c0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + dtype_bytes(dtype, c0);
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

}  // namespace seek
