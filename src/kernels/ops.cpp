#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu.h"
#include "core/threads.h"
#include "kernels/quant.h"

namespace seek::kernels {

void rmsnorm(const float* x, const float* g, float* y, int64_t n, float eps) {
  // Sum of squares in double: the norm is the one reduction whose rounding every later layer
  // inherits, and n is small enough for this to cost nothing.
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * g[i];
}

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

void rope_interleaved(float* x, int64_t d, const float* cos, const float* sin) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos[i] - b * sin[i];
    x[2 * i + 1] = a * sin[i] + b * cos[i];
  }
}

void rope_interleaved_backward(float* dx, int64_t d, const float* cos, const float* sin) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const float a = dx[2 * i], b = dx[2 * i + 1];
    dx[2 * i] = a * cos[i] + b * sin[i];
    dx[2 * i + 1] = -a * sin[i] + b * cos[i];
  }
}

namespace avx2 {
void exp_shifted(const float* x, float shift, float* y, int64_t n);
}
namespace avx512 {
void exp_shifted(const float* x, float shift, float* y, int64_t n);
}

void exp_shifted(const float* x, float shift, float* y, int64_t n) {
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::exp_shifted(x, shift, y, n);
    case Isa::Avx2: return avx2::exp_shifted(x, shift, y, n);
    case Isa::Scalar:
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
      return;
  }
}

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (mx == -std::numeric_limits<float>::infinity()) {  // fully masked row: all zeros
    for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  exp_shifted(x, mx, x, n);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax_backward(const float* p, const float* dp, float* dx, int64_t n, float scale) {
  softmax_backward_causal(p, dp, dx, n, n, scale);
}

void softmax_backward_causal(const float* p, const float* dp, float* dx, int64_t n, int64_t live,
                             float scale) {
  double dot = 0.0;
  for (int64_t i = 0; i < live; ++i) dot += double(p[i]) * double(dp[i]);
  for (int64_t i = 0; i < n; ++i) dx[i] = p[i] * (dp[i] - float(dot)) * scale;
}

namespace {

// σ(g[i]) for i in [0, n), n <= kSigmoidChunk, from t = e^(−|g|) (never overflows):
// 1/(1 + t) for g >= 0, t/(1 + t) below.
constexpr int64_t kSigmoidChunk = 256;
void sigmoid_chunk(const float* g, int64_t n, float* s) {
  for (int64_t i = 0; i < n; ++i) s[i] = -std::fabs(g[i]);
  exp_shifted(s, 0.0f, s, n);
  for (int64_t i = 0; i < n; ++i) s[i] = (g[i] >= 0.0f ? 1.0f : s[i]) / (1.0f + s[i]);
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  parallel_ranges(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    float s[kSigmoidChunk];
    for (int64_t c = b; c < e; c += kSigmoidChunk) {
      const int64_t m = std::min(kSigmoidChunk, e - c);
      sigmoid_chunk(gate + c, m, s);
      for (int64_t i = 0; i < m; ++i) out[c + i] = gate[c + i] * s[i] * up[c + i];
    }
  });
}

void silu_mul_backward(const float* g, const float* u, const float* dout, float* dg, float* du,
                       int64_t n) {
  parallel_ranges(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    float sg[kSigmoidChunk];
    for (int64_t c = b; c < e; c += kSigmoidChunk) {
      const int64_t m = std::min(kSigmoidChunk, e - c);
      sigmoid_chunk(g + c, m, sg);
      for (int64_t j = 0; j < m; ++j) {
        const int64_t i = c + j;
        const float s = sg[j], d = dout[i];
        du[i] = d * g[i] * s;
        dg[i] = d * u[i] * s * (1.0f + g[i] * (1.0f - s));
      }
    }
  });
}

void dequantize_row(const WeightView& w, int64_t r, float* out) {
  const int64_t off = r * w.ld;
  switch (w.dtype) {
    case DType::F32: {
      const float* p = static_cast<const float*>(w.data) + off;
      for (int64_t j = 0; j < w.cols; ++j) out[j] = p[j];
      return;
    }
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + off;
      for (int64_t j = 0; j < w.cols; ++j) out[j] = bf16_to_f32(p[j]);
      return;
    }
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q6_K:
      return dequantize_row(w.dtype, static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, off),
                            out, w.cols);
    default:
      for (int64_t j = 0; j < w.cols; ++j) out[j] = w.at(r, j);
  }
}

}  // namespace seek::kernels
