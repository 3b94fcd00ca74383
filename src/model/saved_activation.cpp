#include "model/saved_activation.h"

namespace seek::model {

void SavedActivation::keep(std::vector<float> x, int64_t cols, bool fp8) {
  fp8_ = fp8;
  if (!fp8) {
    f32_ = std::move(x);
    q_ = {};
    return;
  }
  keep(x.data(), cols > 0 ? int64_t(x.size()) / cols : 0, cols, true);
}

void SavedActivation::keep(const float* x, int64_t rows, int64_t cols, bool fp8) {
  fp8_ = fp8;
  if (!fp8) {
    f32_.assign(x, x + rows * cols);
    q_ = {};
    return;
  }
  f32_ = {};
  kernels::quantize_fp8_operand(x, cols, false, rows, cols, kernels::Fp8Scaling::Tile, q_);
}

const float* SavedActivation::values(std::vector<float>& buf) const {
  if (!fp8_) return f32_.data();
  buf.resize(q_.codes.size());
  kernels::dequantize_fp8_operand(q_, buf.data());
  return buf.data();
}

size_t SavedActivation::bytes() const {
  return fp8_ ? q_.codes.size() + q_.scale.size() * sizeof(float) : f32_.size() * sizeof(float);
}

}  // namespace seek::model
