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

#include "kernels/isa.h"
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

namespace seek::kernels {
namespace {

using test::isas;
using test::IsaScope;

// exp_shifted on every tier against std::exp: within 2 ulp where e^(x − shift) is a normal float,
// 0 for −inf and far below, NaN kept; and a value's result is the same at any position of any
// length (the vector tails), which keeps a decode step bit for bit a prefill row.
TEST(ExpShifted, EveryTierIsStdExpWithin2UlpAndPositionFree) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-87.0f, 0.0f);
  std::vector<float> x(1000);
  for (float& v : x) v = u(rng);
  x[0] = 0.0f, x[1] = -0.0f, x[2] = -1e-8f, x[3] = -87.0f, x[4] = -0.6931472f;
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    std::vector<float> y(x.size());
    exp_shifted(x.data(), 0.0f, y.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const float ref = std::exp(x[i]);
      const float ulp = std::nextafter(ref, INFINITY) - ref;
      EXPECT_LE(std::fabs(y[i] - ref), 2.0f * ulp) << isa_name(isa) << " e^" << x[i];
    }
    // The shift: e^(x − s) for x <= s.
    std::vector<float> xs(x), ys(x.size());
    for (float& v : xs) v += 5.0f;
    exp_shifted(xs.data(), 5.0f, ys.data(), int64_t(xs.size()));
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(ys[i], std::exp(xs[i] - 5.0f), 3e-7f * std::exp(xs[i] - 5.0f) + 1e-37f) << i;
    // Edge values, and in place.
    std::vector<float> e = {-INFINITY, -200.0f, -88.0f, NAN, 0.0f};
    exp_shifted(e.data(), 0.0f, e.data(), int64_t(e.size()));
    EXPECT_EQ(e[0], 0.0f) << isa_name(isa);
    EXPECT_EQ(e[1], 0.0f);
    EXPECT_LT(e[2], 1.2e-38f);
    EXPECT_TRUE(std::isnan(e[3])) << isa_name(isa) << ": a NaN must not vanish";
    EXPECT_EQ(e[4], 1.0f);
    // Every length 1..40 and offset: each value as in the long run.
    for (int64_t n = 1; n <= 40; ++n)
      for (int64_t off : {0, 3, 17}) {
        std::vector<float> part(static_cast<size_t>(n));
        exp_shifted(x.data() + off, 0.0f, part.data(), n);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(std::bit_cast<uint32_t>(part[size_t(i)]), std::bit_cast<uint32_t>(y[size_t(off + i)]))
              << isa_name(isa) << " n " << n << " at " << off + i;
      }
  }
}

// softmax and SwiGLU through exp_shifted on every tier: the plain formulas in double within
// float rounding, SwiGLU's σ from e^(−|g|) for every sign and size of g.
TEST(ExpShifted, SoftmaxAndSwigluOnEveryTierMatchTheirFormulas) {
  std::mt19937 rng(4);
  std::vector<float> logits = randn(300, rng);
  for (size_t i = 0; i < logits.size(); i += 7) logits[i] = -INFINITY;  // masked
  std::vector<float> g = randn(1000, rng), up = randn(1000, rng), d = randn(1000, rng);
  g[0] = 100.0f, g[1] = -100.0f, g[2] = 0.0f, g[3] = -30.0f;
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    std::vector<float> p(logits);
    softmax(p.data(), int64_t(p.size()));
    double mx = -INFINITY, sum = 0.0;
    for (float v : logits) mx = std::max(mx, double(v));
    for (float v : logits) sum += std::exp(double(v) - mx);
    for (size_t i = 0; i < p.size(); ++i) {
      const double ref = std::exp(double(logits[i]) - mx) / sum;
      EXPECT_NEAR(p[i], ref, 1e-6 * ref + 1e-12) << isa_name(isa) << " " << i;
    }
    std::vector<float> out(g.size()), dg(g.size()), du(g.size());
    silu_mul(g.data(), up.data(), out.data(), int64_t(g.size()));
    silu_mul_backward(g.data(), up.data(), d.data(), dg.data(), du.data(), int64_t(g.size()));
    for (size_t i = 0; i < g.size(); ++i) {
      const double s = 1.0 / (1.0 + std::exp(-double(g[i])));
      const double silu = double(g[i]) * s;
      EXPECT_NEAR(out[i], silu * up[i], 1e-6 * std::fabs(silu * up[i]) + 1e-30) << isa_name(isa) << " g " << g[i];
      EXPECT_NEAR(du[i], d[i] * silu, 1e-6 * std::fabs(d[i] * silu) + 1e-30) << g[i];
      const double dgr = d[i] * up[i] * s * (1.0 + g[i] * (1.0 - s));
      EXPECT_NEAR(dg[i], dgr, 2e-6 * std::fabs(dgr) + 1e-6 * std::fabs(d[i] * up[i])) << g[i];
    }
  }
}

}  // namespace
}  // namespace seek::kernels
