// The one place a matrix product picks its kernel: the ISA is read at every call (an atomic
// load), so tests can run each variant through set_cpu_isa.
#include "kernels/matmul.h"

#include <algorithm>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/gemm_train.h"
#include "kernels/matmul_internal.h"

namespace seek::kernels {
namespace {

// Shapes every variant may assume: a supported dtype, FP8 with its scales, and something to do.
bool prepare(int64_t M, const WeightView& w, float* y, int64_t ldy, int64_t out_cols) {
  if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16 &&
      w.dtype != DType::F8_E4M3 && !dtype_is_blocked(w.dtype))
    fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
  if (dtype_is_blocked(w.dtype) && (w.cols % dtype_block(w.dtype) || w.ld % dtype_block(w.dtype)))
    fail("matmul: {} weight [{} x {}] (ld {}) is not in whole blocks of {}", dtype_name(w.dtype),
         w.rows, w.cols, w.ld, dtype_block(w.dtype));
  if (w.dtype == DType::F8_E4M3 && !w.scale_inv) fail("matmul: FP8 weight without scale_inv");
  if (M <= 0 || out_cols <= 0) return false;
  if (w.rows == 0 || w.cols == 0) {  // an empty sum
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy, y + m * ldy + out_cols, 0.0f);
    return false;
  }
  return true;
}

}  // namespace

void round_bf16_rows(const float*& x, int64_t& ldx, int64_t M, int64_t K, Scratch& scratch) {
  float* xr = scratch.get<float>(size_t(M * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) xr[m * K + k] = round_bf16(x[m * ldx + k]);
  x = xr;
  ldx = K;
}

namespace {

// Block-quantized weights: x is quantized once here, for every variant alike (Precision does not
// apply: activations are int8 per block, as llama.cpp does).
void matmul_quantized(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                      int64_t ldy) {
  thread_local QuantizedActs xq;
  quantize_acts(w.dtype, x, M, ldx, w.cols, xq);
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::matmul_quant(xq, w, y, ldy);
    case Isa::Avx2: return avx2::matmul_quant(xq, w, y, ldy);
    case Isa::Scalar: return portable::matmul_quant(xq, w, y, ldy);
  }
}

}  // namespace

void matmul_fp8(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                int64_t ldy, decltype(&gemm) product) {
  if (w.dtype != DType::F32)
    fail("matmul: FP8 precision (training) multiplies float32 master weights, not {}",
         dtype_name(w.dtype));
  product(Trans::No, Trans::Yes, M, w.rows, w.cols, x, ldx, static_cast<const float*>(w.data),
          w.ld, y, ldy, false, Precision::FP8, Operand::Weight);
}

void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            Precision p) {
  if (!prepare(M, w, y, ldy, w.rows)) return;
  if (dtype_is_blocked(w.dtype)) return matmul_quantized(x, M, ldx, w, y, ldy);
  if (p == Precision::FP8) return matmul_fp8(x, M, ldx, w, y, ldy, gemm);
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::matmul(x, M, ldx, w, y, ldy, p);
    case Isa::Avx2: return avx2::matmul(x, M, ldx, w, y, ldy, p);
    case Isa::Scalar: return portable::matmul(x, M, ldx, w, y, ldy, p);
  }
}

void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  if (dtype_is_blocked(w.dtype))
    fail("matmul_t: {} weights are not supported (block-quantized weights only multiply as x·Wᵀ)",
         dtype_name(w.dtype));
  if (!prepare(M, w, y, ldy, w.cols)) return;
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::matmul_t(x, M, ldx, w, y, ldy);
    case Isa::Avx2: return avx2::matmul_t(x, M, ldx, w, y, ldy);
    case Isa::Scalar: return portable::matmul_t(x, M, ldx, w, y, ldy);
  }
}

}  // namespace seek::kernels
