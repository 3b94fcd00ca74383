// Element-wise and row-wise operators of the transformer (norms, RoPE, softmax, SwiGLU). These
// are a small share of the run time next to the matrix products, so one plain implementation
// written for the auto-vectorizer serves every ISA.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace seek::kernels {

// y = x / sqrt(mean(x²) + eps) · g        x, y: [n] (may alias)
void rmsnorm(const float* x, const float* g, float* y, int64_t n, float eps);

// Rotates interleaved pairs (x[2i], x[2i+1]) by angle θ_i (the official model.py's complex view,
// not Llama's rotate-half): x'[2i] = x[2i]·cos θ_i − x[2i+1]·sin θ_i,
// x'[2i+1] = x[2i]·sin θ_i + x[2i+1]·cos θ_i.      x: [d], cos/sin: [d/2]
void rope_interleaved(float* x, int64_t d, const float* cos, const float* sin);

// In-place numerically stable softmax over x[0, n); entries equal to -inf get probability 0.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^-g)
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// Widens row r of a weight (any stored dtype, FP8 with its block scales) to float32.
void dequantize_row(const WeightView& w, int64_t r, float* out);

}  // namespace seek::kernels
