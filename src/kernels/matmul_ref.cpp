// The scalar references of matmul and matmul_t: the definition every SIMD variant is tested
// against.
#include "kernels/gemm_train.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quant.h"

namespace seek::kernels {

namespace ref {

// Block-quantized weights: the activations quantized per block, quant_dot per output (quant.h).
void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  if (p == Precision::FP8) return matmul_fp8(x, M, ldx, w, y, ldy, &ref::gemm);
  if (dtype_is_blocked(w.dtype)) {
    QuantizedActs xq;
    quantize_acts(w.dtype, x, M, ldx, w.cols, xq);
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < w.rows; ++n)
        y[m * ldy + n] = quant_dot(w.dtype, base + n * dtype_bytes(w.dtype, w.ld), xq, m);
    return;
  }
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
