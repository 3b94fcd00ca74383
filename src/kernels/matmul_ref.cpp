// The scalar references of matmul and matmul_t: the definition every SIMD variant is tested
// against.
#include "kernels/matmul.h"

namespace seek::kernels {

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
