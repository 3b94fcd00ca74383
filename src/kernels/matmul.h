// Matrix products against weights kept in their stored dtype (F32, BF16, F16, FP8 E4M3 with
// 128x128 block scales, and GGML's block-quantized Q8_0, Q4_0, Q4_K, Q6_K). No FP32 copy of a
// weight is ever made: conversion happens in registers.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor_view.h"

namespace seek::kernels {

// Weight views live in core/ (model code builds them); the kernels' name for them.
using seek::WeightView;

// Activation precision inside a product. F32: activations stay binary32 (the reference
// semantics: --precise and the fixture tests). BF16: activations are rounded to bf16 and the
// product uses the CPU's bf16 dot instructions (the default for prefill and decode: twice the
// fp32 rate, and fewer instructions per FP8 weight); accumulation is always F32.
// Weights are never rounded in either mode (BF16 and FP8 codes are exact in bf16; F32/F16
// weights under BF16 precision run on fp32 FMAs), so both modes equal `ref` up to the order
// of the fp32 sums. (vdpbf16ps flushes bf16 subnormals, |x| < 1.2e-38, to zero.)
// FP8 (mixed-precision training only): DeepSeek-V3's FP8 GEMM, x quantized to e4m3 per 1×128
// tile and the weight, which must be F32 (the master weight), per 128×128 block, products summed
// in fp32 per 128-element block of K (kernels/gemm_train.h, kernels/fp8.h).
enum class Precision { F32, BF16, FP8 };

// y[m, n] = Σ_k x[m, k] · W[n, k]      x: [M, K=w.cols] (row stride ldx), y: [M, N=w.rows] (ldy)
// The kernel is picked per call from seek::cpu_isa(), M, the dtype and the precision (<= 8 rows,
// or <= 32 rows of BF16 weights under Precision::BF16: a weight-streaming GEMV; more: a packed,
// cache-blocked GEMM); it uses up to max_threads() OpenMP threads when the
// product is big enough to pay for them, and one thread inside an outer parallel region.
// y must not overlap x or W.
// Block-quantized W (Q8_0, Q4_0, Q4_K, Q6_K) multiplies as llama.cpp does, whatever `p` says:
// each row of x is quantized once per call to int8 with an fp32 scale per block (32 elements for
// Q8_0/Q4_0, 256 for the K types), every weight block's dot is an exact integer sum, and only the
// block scaling is in fp32 (quant.h, quant_dot, defines it; ref::matmul runs exactly that).
void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p = Precision::F32);
inline void matmul(const float* x, int64_t M, const WeightView& w, float* y,
                   Precision p = Precision::F32) {
  matmul(x, M, w.cols, w, y, w.rows, p);
}

// y[m, k] = Σ_n x[m, n] · W[n, k]      x: [M, N=w.rows], y: [M, K=w.cols]  (W not transposed;
// MLA's weight absorption multiplies queries by W_UK this way). Block-quantized W is an Error.
void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy);
inline void matmul_t(const float* x, int64_t M, const WeightView& w, float* y) {
  matmul_t(x, M, w.rows, w, y, w.cols);
}

// Scalar references (the definition every SIMD variant is tested against).
namespace ref {
void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p);
void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy);
}  // namespace ref

}  // namespace seek::kernels
