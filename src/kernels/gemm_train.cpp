// Dispatch of the training GEMM (the ISA is read at every call, an atomic load), plus its scalar
// reference, which is also the scalar tier.
#include "kernels/gemm_train.h"

#include "core/cpu.h"
#include "core/dtype.h"

namespace seek::kernels {

namespace ref {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p) {
  const auto in = [p](float v) { return p == Precision::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v; };
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = ta == Trans::No ? A[i * lda + k] : A[k * lda + i];
        const float b = tb == Trans::No ? B[k * ldb + j] : B[j * ldb + k];
        acc += double(in(a)) * double(in(b));
      }
      float& c = C[i * ldc + j];
      c = accumulate ? c + float(acc) : float(acc);
    }
}
}  // namespace ref

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = 0.0f;
    return;
  }
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p);
    case Isa::Avx2: return avx2::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p);
    case Isa::Scalar: return ref::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p);
  }
}

}  // namespace seek::kernels
