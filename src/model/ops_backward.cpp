#include "model/ops_backward.h"

#include <cmath>

namespace seek::model {

void rmsnorm_backward(const float* x, const float* g, const float* dy, float* dx, float* dg,
                      int64_t n, float eps) {
  double ss = 0.0, dot = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    ss += double(x[i]) * double(x[i]);
    dot += double(dy[i]) * double(g[i]) * double(x[i]);
  }
  const double r = 1.0 / std::sqrt(ss / double(n) + double(eps));
  const float rf = float(r), c = float(r * r * r * dot / double(n));
  if (dg)
    for (int64_t i = 0; i < n; ++i) dg[i] += dy[i] * x[i] * rf;
  for (int64_t i = 0; i < n; ++i) dx[i] = rf * g[i] * dy[i] - c * x[i];
}

void rope_interleaved_backward(float* dx, int64_t d, const float* cos, const float* sin) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const float a = dx[2 * i], b = dx[2 * i + 1];
    dx[2 * i] = a * cos[i] + b * sin[i];
    dx[2 * i + 1] = -a * sin[i] + b * cos[i];
  }
}

void silu_mul_backward(const float* g, const float* u, const float* dout, float* dg, float* du,
                       int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = 1.0f / (1.0f + std::exp(-g[i]));
    const float d = dout[i];
    du[i] = d * g[i] * s;
    dg[i] = d * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace seek::model
