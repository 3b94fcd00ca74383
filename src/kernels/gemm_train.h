// Float32 GEMM with the transposes training needs. With W a linear weight [out, in] (HF layout):
//   forward   y[T, out]   = x[T, in] · Wᵀ          gemm(NoTrans, Trans,   ...)
//   input     dx[T, in]  += dy[T, out] · W         gemm(NoTrans, NoTrans, ...)
//   weight    dW[out, in] += dyᵀ[out, T] · x[T, in]  gemm(Trans, NoTrans, ...)
// Each SIMD tier packs A and B into contiguous panels whatever their layout, so its micro-kernel
// never sees a stride (gemm_train_internal.h). `gemm` picks the tier from seek::cpu_isa() at
// every call (scalar: the reference), so tests run each tier through set_cpu_isa.
//
// Precision (mixed-precision training, `"precision": "bf16"`): BF16 rounds both operands to bf16
// (round to nearest even) while packing them and accumulates in fp32, as the GEMMs of BF16
// training on accelerators do. The AVX-512 tier multiplies bf16 pairs with vdpbf16ps (twice the
// fp32 FMA rate); the AVX2 tier rounds its fp32 panels and runs its fp32 kernel (a product of two
// bf16 values is exact in fp32), so every tier computes the same products, up to the order of the
// fp32 sums. (vdpbf16ps and vcvtne2ps2bf16 flush subnormals, |x| < 1.2e-38, to zero.)
#pragma once
#include <cstdint>

#include "kernels/matmul.h"  // Precision

namespace seek::kernels {

enum class Trans : uint8_t { No, Yes };

// C[M, N] (+)= op(A)[M, K] · op(B)[K, N]. op(A) = A ([M, K], row stride lda) or Aᵀ (A stored
// [K, M]); op(B) = B ([K, N], ldb) or Bᵀ (B stored [N, K]). accumulate: C += …, else C = ….
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate,
          Precision p = Precision::F32);

// Common shapes, named after what they compute (all row-major, tight strides).
// y[M, N] (+)= x[M, K] · W[N, K]ᵀ
inline void gemm_xwt(const float* x, const float* W, float* y, int64_t M, int64_t N, int64_t K,
                     bool accumulate = false, Precision p = Precision::F32) {
  gemm(Trans::No, Trans::Yes, M, N, K, x, K, W, K, y, N, accumulate, p);
}
// dx[M, K] (+)= dy[M, N] · W[N, K]
inline void gemm_dyw(const float* dy, const float* W, float* dx, int64_t M, int64_t N, int64_t K,
                     bool accumulate = true, Precision p = Precision::F32) {
  gemm(Trans::No, Trans::No, M, K, N, dy, N, W, K, dx, K, accumulate, p);
}
// dW[N, K] += dy[M, N]ᵀ · x[M, K]
inline void gemm_dytx(const float* dy, const float* x, float* dW, int64_t M, int64_t N,
                      int64_t K, Precision p = Precision::F32) {
  gemm(Trans::Yes, Trans::No, N, K, M, dy, N, x, K, dW, K, true, p);
}

namespace ref {
// The definition (plain loops, double accumulation; under BF16 every operand rounded to bf16
// first) the fast paths are tested against.
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate,
          Precision p = Precision::F32);
}  // namespace ref

// The SIMD tiers (gemm_train_avx2.cpp, gemm_train_avx512.cpp); callers go through `gemm`.
namespace avx2 {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p);
}  // namespace avx2
namespace avx512 {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p);
}  // namespace avx512

}  // namespace seek::kernels
