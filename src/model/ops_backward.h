// Backward passes of the element-wise and row-wise operators in kernels/ops.h. Each takes the
// forward's inputs (not its outputs, unless noted) and the gradient of the output.
#pragma once
#include <cstdint>

namespace seek::model {

// y = x · r · g, r = (mean(x²) + eps)^-½:
//   dx_j = r·g_j·dy_j − (r³/n)·x_j·Σ_i dy_i·g_i·x_i,   dg_i += dy_i·x_i·r.      x, dy, dx: [n]
// dx may alias dy. dg may be null.
void rmsnorm_backward(const float* x, const float* g, const float* dy, float* dx, float* dg,
                      int64_t n, float eps);

// rope_interleaved is a rotation R (scaled by the YaRN mscale folded into cos/sin); its
// gradient is Rᵀ: the same pairs rotated by −θ.                          dx: [d] in place
void rope_interleaved_backward(float* dx, int64_t d, const float* cos, const float* sin);

// out = silu(g)·u: dg = dout·u·silu'(g), du = dout·silu(g), silu'(g) = σ(g)(1 + g(1 − σ(g))).
void silu_mul_backward(const float* g, const float* u, const float* dout, float* dg, float* du,
                       int64_t n);

}  // namespace seek::model
