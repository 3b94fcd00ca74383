// GGML's block-quantized weight formats (Q8_0, Q4_0, Q4_K, Q6_K; layouts in core/dtype.h):
// rows to and from fp32, and the exact integer arithmetic of a matmul against them.
//
// quantize_row reproduces llama.cpp's reference quantizers (quantize_row_*_ref, no importance
// matrix) bit for bit, so a file Seek writes is the file llama.cpp would write. Their float
// arithmetic is followed operation by operation, and this file's translation unit is compiled for
// the baseline ISA, which has no FMA for the compiler to contract a*b+c into.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace seek::kernels {

// dst[0, n) = the values of the blocks at src. n must be a multiple of dtype_block(t).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// The blocks of src[0, n) (dtype_bytes(t, n) bytes at dst), as llama.cpp's reference quantizer.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// Activations of a product with block-quantized weights, quantized once per call the way llama.cpp
// quantizes them: int8 codes q with one fp32 scale d per block of `block` elements,
// x ≈ d · q, d = max|x| / 127, q = round-half-even(x / d). The block is 32 (Q8_0-style) for Q8_0
// and Q4_0 weights, whose scales are per 32, and 256 (Q8_K-style) for Q4_K and Q6_K: their
// sub-block scales are small integers, so a whole 256-superblock sums in int32 and is scaled in
// float once (fewer float ops than a scale per 32). sum16 holds Σq over each 16 elements, for the
// weight offsets (Q4_K's mins, Q6_K's -32) applied once per sub-block instead of per element.
struct QuantizedActs {
  int64_t M = 0, K = 0, block = 0;
  std::vector<int8_t> q;        // [M, K]
  std::vector<float> d;         // [M, K / block]
  std::vector<int16_t> sum16;   // [M, K / 16]
  const int8_t* q_row(int64_t m) const { return q.data() + m * K; }
  const float* d_row(int64_t m) const { return d.data() + m * (K / block); }
  const int16_t* sum16_row(int64_t m) const { return sum16.data() + m * (K / 16); }
};

// Activation block for weights of type t: 32 or 256 (see QuantizedActs).
int64_t act_block(DType t);
// x [M, K] (row stride ldx) -> a. K must be a multiple of act_block(t).
void quantize_acts(DType t, const float* x, int64_t M, int64_t ldx, int64_t K, QuantizedActs& a);

// Σ_k W[k] · x[m, k] for one row of K weights (blocks at `w`) and activation row m of `a`: the
// definition every matmul variant follows. Per weight block it is an exact integer sum scaled in
// float, accumulated left to right over blocks:
//   Q8_0: acc += (d_w · d_x) · Σ w_i x_i
//   Q4_0: acc += (d_w · d_x) · Σ (n_i - 8) x_i
//   Q4_K: acc += (d · d_x) · Σ_j sc_j Σ_{i∈j} n_i x_i  -  (dmin · d_x) · Σ_j m_j Σ_{i∈j} x_i
//   Q6_K: acc += (d · d_x) · Σ_j sc_j Σ_{i∈j} (q_i - 32) x_i
// (d_x of the activation block; j the 32- or 16-element sub-blocks of a superblock.)
float quant_dot(DType t, const void* w, const QuantizedActs& a, int64_t m);

// The six-bit scale and min of sub-block j (0..7) from block_q4_K's 12 packed bytes: j < 4 are the
// low six bits of bytes j and j + 4; j >= 4 take their low four bits from byte j + 4 and their top
// two from the spare top bits of bytes j - 4 (scale) and j (min).
inline void q4k_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = uint8_t((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace seek::kernels
