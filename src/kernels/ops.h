// Element-wise and row-wise operators of the transformer (norms, RoPE, softmax, SwiGLU), each
// forward next to its backward. These are a small share of the run time next to the matrix
// products, so one plain implementation written for the auto-vectorizer serves every ISA; only
// their exponential, which the compiler cannot vectorize, has ISA tiers (exp_shifted).
// A backward takes the forward's inputs (not its outputs, unless noted) and the gradient of the
// output.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace seek::kernels {

// y = x / sqrt(mean(x²) + eps) · g        x, y: [n] (may alias)
void rmsnorm(const float* x, const float* g, float* y, int64_t n, float eps);
// y = x · r · g, r = (mean(x²) + eps)^-½:
//   dx_j = r·g_j·dy_j − (r³/n)·x_j·Σ_i dy_i·g_i·x_i,   dg_i += dy_i·x_i·r.      x, dy, dx: [n]
// dx may alias dy. dg may be null.
void rmsnorm_backward(const float* x, const float* g, const float* dy, float* dx, float* dg,
                      int64_t n, float eps);

// Rotates interleaved pairs (x[2i], x[2i+1]) by angle θ_i (the official model.py's complex view,
// not Llama's rotate-half): x'[2i] = x[2i]·cos θ_i − x[2i+1]·sin θ_i,
// x'[2i+1] = x[2i]·sin θ_i + x[2i+1]·cos θ_i.      x: [d], cos/sin: [d/2]
void rope_interleaved(float* x, int64_t d, const float* cos, const float* sin);
// rope_interleaved is a rotation R (scaled by the YaRN mscale folded into cos/sin); its
// gradient is Rᵀ: the same pairs rotated by −θ.                          dx: [d] in place
void rope_interleaved_backward(float* dx, int64_t d, const float* cos, const float* sin);

// y[i] = e^(x[i] − shift) for x[i] <= shift (softmax's form): −inf gives 0, NaN stays NaN. On
// AVX2/AVX-512 a degree-7 polynomial after range reduction, within 2 ulp of std::exp where the
// result is a normal float (below e^−87 it is 0); the scalar tier is std::exp. A value's result
// does not depend on its position or on n (tails run the same vector code). y may alias x.
void exp_shifted(const float* x, float shift, float* y, int64_t n);

// In-place numerically stable softmax over x[0, n); entries equal to -inf get probability 0.
void softmax(float* x, int64_t n);
// Of p = softmax(x) (takes the output p): dx_j = p_j·(dp_j − Σ_i p_i·dp_i)·scale, where scale
// folds in a factor the logits were multiplied by (attention's 1/sqrt(d); 1 otherwise). Masked
// entries (p = 0) get dx = 0.                                              p, dp, dx: [n]
void softmax_backward(const float* p, const float* dp, float* dx, int64_t n, float scale = 1.0f);
// The same for a causal row whose entries past the first `live` are masked (p = 0 there): dx is
// identical, the dot skips the tail (attention row i has live = i + 1, half the square's work).
void softmax_backward_causal(const float* p, const float* dp, float* dx, int64_t n, int64_t live,
                             float scale);

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^-g)
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
// out = silu(g)·u: dg = dout·u·silu'(g), du = dout·silu(g), silu'(g) = σ(g)(1 + g(1 − σ(g))).
void silu_mul_backward(const float* g, const float* u, const float* dout, float* dg, float* du,
                       int64_t n);

// Widens row r of a weight (any stored dtype, FP8 with its block scales) to float32.
void dequantize_row(const WeightView& w, int64_t r, float* out);

}  // namespace seek::kernels
