// Dispatch of matrix products to the best kernel for this CPU (placeholder: reference only;
// the SIMD kernels replace this).
#include "kernels/matmul.h"

namespace seek::kernels {

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  ref::matmul(x, M, ldx, w, y, ldy, p);
}

void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  ref::matmul_t(x, M, ldx, w, y, ldy);
}

}  // namespace seek::kernels
