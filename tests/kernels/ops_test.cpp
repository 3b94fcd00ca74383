// Each element-wise op's backward against central differences of its forward: for a random
// upstream gradient dy, L(x) = Σ dy·f(x) and the backward must give dL/dx (and dL/dg for the
// norm's gain). The forwards run in float32, so with step h the difference quotient carries about
// n·2^-24·|L| / h of rounding: the tolerance below is far above that and far below any
// wrong-sign or missing-term error (those are O(|dx|)).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/ops.h"

namespace seek::kernels {
namespace {

constexpr float kStep = 1e-3f;

std::vector<float> randn(size_t n, std::mt19937& rng, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// d/dv_j of loss(v), central differences, for every j.
std::vector<double> numeric_grad(std::vector<float> v,
                                 const std::function<double(const std::vector<float>&)>& loss) {
  std::vector<double> g(v.size());
  for (size_t j = 0; j < v.size(); ++j) {
    const float v0 = v[j];
    v[j] = v0 + kStep;
    const double up = loss(v);
    v[j] = v0 - kStep;
    const double down = loss(v);
    v[j] = v0;
    g[j] = (up - down) / (2.0 * double(kStep));
  }
  return g;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

void expect_close(const std::vector<float>& analytic, const std::vector<double>& numeric,
                  const char* what) {
  ASSERT_EQ(analytic.size(), numeric.size());
  for (size_t j = 0; j < numeric.size(); ++j)
    EXPECT_NEAR(analytic[j], numeric[j], 2e-3 * (1.0 + std::fabs(numeric[j])))
        << what << " at " << j;
}

TEST(OpsBackward, RmsNorm) {
  std::mt19937 rng(1);
  const int64_t n = 24;
  const float eps = 1e-6f;
  const auto x = randn(n, rng), g = randn(n, rng, 1.0f), dy = randn(n, rng);
  auto loss_x = [&](const std::vector<float>& xv) {
    std::vector<float> y(n);
    rmsnorm(xv.data(), g.data(), y.data(), n, eps);
    return dot(dy, y);
  };
  auto loss_g = [&](const std::vector<float>& gv) {
    std::vector<float> y(n);
    rmsnorm(x.data(), gv.data(), y.data(), n, eps);
    return dot(dy, y);
  };
  std::vector<float> dx(n), dg(n, 0.5f);  // dg accumulates onto what is there
  rmsnorm_backward(x.data(), g.data(), dy.data(), dx.data(), dg.data(), n, eps);
  for (float& v : dg) v -= 0.5f;
  expect_close(dx, numeric_grad(x, loss_x), "dx");
  expect_close(dg, numeric_grad(g, loss_g), "dg");
}

TEST(OpsBackward, RopeInterleaved) {
  std::mt19937 rng(2);
  const int64_t d = 16;
  std::vector<float> cos(d / 2), sin(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) {  // a YaRN-like mscale 1.2 folded into both
    cos[size_t(i)] = 1.2f * std::cos(0.7f * float(i + 1));
    sin[size_t(i)] = 1.2f * std::sin(0.7f * float(i + 1));
  }
  const auto x = randn(d, rng), dy = randn(d, rng);
  auto loss = [&](const std::vector<float>& xv) {
    std::vector<float> y = xv;
    rope_interleaved(y.data(), d, cos.data(), sin.data());
    return dot(dy, y);
  };
  std::vector<float> dx = dy;
  rope_interleaved_backward(dx.data(), d, cos.data(), sin.data());
  expect_close(dx, numeric_grad(x, loss), "dx");
}

TEST(OpsBackward, SoftmaxWithScaleAndMask) {
  std::mt19937 rng(3);
  const int64_t n = 12;
  const float scale = 0.35f;  // logits = scale·x, as attention's 1/sqrt(d)
  const auto x = randn(n, rng), dp = randn(n, rng);
  auto probs = [&](const std::vector<float>& xv) {
    std::vector<float> p(n);
    for (int64_t i = 0; i < n; ++i)  // the last 4 entries masked (causal)
      p[size_t(i)] = i < n - 4 ? scale * xv[size_t(i)] : -INFINITY;
    softmax(p.data(), n);
    return p;
  };
  auto loss = [&](const std::vector<float>& xv) { return dot(dp, probs(xv)); };
  const auto p = probs(x);
  std::vector<float> dx(n);
  softmax_backward(p.data(), dp.data(), dx.data(), n, scale);
  expect_close(dx, numeric_grad(x, loss), "dx");
  for (int64_t i = n - 4; i < n; ++i) EXPECT_EQ(dx[size_t(i)], 0.0f) << "masked entry " << i;
  // The causal form skips the masked tail in its dot and gives the same bits (training results
  // must not move).
  std::vector<float> dxc(n);
  softmax_backward_causal(p.data(), dp.data(), dxc.data(), n, n - 4, scale);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(dxc[size_t(i)]), std::bit_cast<uint32_t>(dx[size_t(i)])) << i;
}

TEST(OpsBackward, SiluMul) {
  std::mt19937 rng(4);
  const int64_t n = 20;
  const auto gate = randn(n, rng), up = randn(n, rng), dout = randn(n, rng);
  auto loss_g = [&](const std::vector<float>& gv) {
    std::vector<float> o(n);
    silu_mul(gv.data(), up.data(), o.data(), n);
    return dot(dout, o);
  };
  auto loss_u = [&](const std::vector<float>& uv) {
    std::vector<float> o(n);
    silu_mul(gate.data(), uv.data(), o.data(), n);
    return dot(dout, o);
  };
  std::vector<float> dg(n), du(n);
  silu_mul_backward(gate.data(), up.data(), dout.data(), dg.data(), du.data(), n);
  expect_close(dg, numeric_grad(gate, loss_g), "dgate");
  expect_close(du, numeric_grad(up, loss_u), "dup");
}

}  // namespace
}  // namespace seek::kernels
