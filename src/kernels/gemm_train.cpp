// Dispatch of the training GEMM (the ISA is read at every call, an atomic load), plus its scalar
// reference, which is also the scalar tier.
#include "kernels/gemm_train.h"

#include <algorithm>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"

namespace seek::kernels {

namespace {

// op(A) [M, K] and op(B) by its columns [N, K], quantized as Precision::FP8 defines.
void quantize_operands(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A,
                       int64_t lda, const float* B, int64_t ldb, Operand b_kind, Fp8Operand& a,
                       Fp8Operand& b) {
  quantize_fp8_operand(A, lda, ta == Trans::Yes, M, K, Fp8Scaling::Tile, a);
  quantize_fp8_operand(B, ldb, tb == Trans::No, N, K,
                       b_kind == Operand::Weight ? Fp8Scaling::Block : Fp8Scaling::Tile, b);
}

}  // namespace

namespace ref {
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p,
          Operand b_kind) {
  if (p == Precision::FP8) {
    Fp8Operand a, b;
    quantize_operands(ta, tb, M, N, K, A, lda, B, ldb, b_kind, a, b);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0.0;
        for (int64_t k0 = 0; k0 < K; k0 += kFp8Block) {
          double block = 0.0;
          for (int64_t k = k0; k < std::min(K, k0 + kFp8Block); ++k)
            block += double(fp8_e4m3_to_f32(a.codes[size_t(i * K + k)])) *
                     double(fp8_e4m3_to_f32(b.codes[size_t(j * K + k)]));
          acc += block * double(a.scale_at(i, k0)) * double(b.scale_at(j, k0));
        }
        float& c = C[i * ldc + j];
        c = accumulate ? c + float(acc) : float(acc);
      }
    return;
  }
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
          const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Precision p,
          Operand b_kind) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = 0.0f;
    return;
  }
  const Isa isa = cpu_isa();
  if (p == Precision::FP8 && isa != Isa::Scalar) {
    thread_local Fp8Operand a, b;
    quantize_operands(ta, tb, M, N, K, A, lda, B, ldb, b_kind, a, b);
    if (isa == Isa::Avx512) return avx512::gemm_fp8(a, b, C, ldc, accumulate);
    // AVX2: the dequantized operands on the fp32 kernel.
    thread_local std::vector<float> ad, bd;
    ad.resize(size_t(M * K));
    bd.resize(size_t(N * K));
    dequantize_fp8_operand(a, ad.data());
    dequantize_fp8_operand(b, bd.data());
    return avx2::gemm(Trans::No, Trans::Yes, M, N, K, ad.data(), K, bd.data(), K, C, ldc,
                      accumulate, Precision::F32);
  }
  switch (isa) {
    case Isa::Avx512: return avx512::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p);
    case Isa::Avx2: return avx2::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p);
    case Isa::Scalar: return ref::gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, p, b_kind);
  }
}

}  // namespace seek::kernels
