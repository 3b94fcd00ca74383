// attention_decode's blocks in plain C++ for the x86-64-v2 baseline: per head, the block's
// scores, their max, the exponentials and the weighted sum (the block's rows stay in cache
// across heads).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/attention_internal.h"
#include "kernels/matmul_internal.h"

namespace seek::kernels::portable {

void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  const bool bf = a.bf16();
  auto row = [&](int64_t j, int64_t k) {
    return bf ? bf16_to_f32(a.rows16[j * a.ldr + k]) : a.rows[j * a.ldr + k];
  };
  std::vector<float> qh(size_t(a.W)), s(static_cast<size_t>(kDecodeBlockRows));
  for (int64_t b = b0; b < b1; ++b) {
    float* m = states + (b - b0) * state_floats(a.nh, a.dv);
    float* l = m + a.nh;
    float* acc = l + a.nh;
    const int64_t r0 = b * kDecodeBlockRows, n = std::min(a.n - r0, kDecodeBlockRows);
    for (int64_t h = 0; h < a.nh; ++h) {
      for (int64_t k = 0; k < a.W; ++k)
        qh[size_t(k)] = bf ? round_bf16(a.q[h * a.ldq + k]) : a.q[h * a.ldq + k];
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        float d = 0.0f;
        for (int64_t k = 0; k < a.W; ++k) d += qh[size_t(k)] * row(r0 + j, k);
        s[size_t(j)] = a.scale * d;
        mx = std::max(mx, s[size_t(j)]);
      }
      float sum = 0.0f;
      float* acc_h = acc + h * a.dv;
      std::fill(acc_h, acc_h + a.dv, 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float e = std::exp(s[size_t(j)] - mx), pj = bf ? round_bf16(e) : e;
        sum += e;
        for (int64_t c = 0; c < a.dv; ++c) acc_h[c] += pj * row(r0 + j, c);
      }
      m[h] = mx;
      l[h] = sum;
    }
  }
}

float block_weights_bf16(float* s, int64_t n, float* l) {
  float mx = -std::numeric_limits<float>::infinity(), sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
  for (int64_t j = 0; j < n; ++j) {
    const float e = std::exp(s[j] - mx);
    sum += e;
    s[j] = round_bf16(e);
  }
  *l = sum;
  return mx;
}

}  // namespace seek::kernels::portable
