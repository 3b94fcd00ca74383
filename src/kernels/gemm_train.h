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
//
// FP8 (`"precision": "fp8"`, DeepSeek-V3's FP8 GEMM): both operands quantized to e4m3 with
// fp32 scales amax/448 (kernels/fp8.h): op(A), an activation or gradient, per 1×128 tile along
// K; op(B) per 128×128 block when it is a weight, per 1×128 tile along K (128×1 in op(B)'s own
// layout) when it is an activation (a weight gradient's dyᵀ·x). For each 128-element block of
// K the products of the codes are summed in fp32 and scaled into C: C = Σ_blocks sa·sb·Σ qa·qb,
// V3's promotion to fp32 every N_C = 128. The codes are exact in bf16, so the AVX-512 tier runs
// them on vdpbf16ps (the operands stored as bytes, widened while packing); the AVX2 tier
// multiplies the dequantized values (qa·sa)(qb·sb) on its fp32 kernel.
#pragma once
#include <cstdint>

#include "kernels/fp8.h"
#include "kernels/matmul.h"  // Precision

namespace seek::kernels {

enum class Trans : uint8_t { No, Yes };
// What op(B) is, for FP8 scaling (op(A) is always an activation or a gradient).
enum class Operand : uint8_t { Weight, Activation };

// C[M, N] (+)= op(A)[M, K] · op(B)[K, N]. op(A) = A ([M, K], row stride lda) or Aᵀ (A stored
// [K, M]); op(B) = B ([K, N], ldb) or Bᵀ (B stored [N, K]). accumulate: C += …, else C = ….
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate,
          Precision p = Precision::F32, Operand b = Operand::Weight);

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
  gemm(Trans::Yes, Trans::No, N, K, M, dy, N, x, K, dW, K, true, p, Operand::Activation);
}

namespace ref {
// The definition (plain loops, double accumulation; under BF16 every operand rounded to bf16
// first, under FP8 quantized and summed per K block as above) the fast paths are tested against.
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate,
          Precision p = Precision::F32, Operand b = Operand::Weight);
}  // namespace ref

// The SIMD tiers (gemm_train_avx2.cpp, gemm_train_avx512.cpp); callers go through `gemm`.
namespace avx2 {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p);
}  // namespace avx2
namespace avx512 {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p);
// C[M, N] (+)= the FP8 product of quantized op(A) [M, K] and op(B) seen by columns [N, K].
void gemm_fp8(const Fp8Operand& a, const Fp8Operand& b, float* C, int64_t ldc, bool accumulate);
}  // namespace avx512

}  // namespace seek::kernels
