// GRPO math (rl/grpo.h) against hand-computed values and central finite differences.
#include "rl/grpo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"

using namespace seek;
using namespace seek::rl;

namespace {

// ---- Advantages ----------------------------------------------------------------------------------

TEST(GrpoAdvantages, TwoGroupsByHand) {
  // Group [1, 0, 0, 1]: mean 0.5, sample std √(4·0.25/3) = √(1/3).
  // Group [1, 0, 0, 0]: mean 0.25, Σ(r − mean)² = 0.5625 + 3·0.0625 = 0.75, sample std 0.5.
  const std::vector<double> r = {1, 0, 0, 1, 1, 0, 0, 0};
  const std::vector<double> a = group_advantages(r, 4);
  const double s1 = std::sqrt(1.0 / 3.0) + 1e-4, s2 = 0.5 + 1e-4;
  const std::vector<double> want = {0.5 / s1,   -0.5 / s1,  -0.5 / s1,  0.5 / s1,
                                    0.75 / s2, -0.25 / s2, -0.25 / s2, -0.25 / s2};
  ASSERT_EQ(a.size(), want.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], want[i], 1e-12) << i;
}

TEST(GrpoAdvantages, DrGrpoDropsTheStd) {
  const std::vector<double> r = {1, 0, 0, 0, 0.1, 1, 0.1, 0.1};
  const std::vector<double> a = group_advantages(r, 4, {.scale_by_std = false});
  const std::vector<double> want = {0.75, -0.25, -0.25, -0.25, -0.225, 0.675, -0.225, -0.225};
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], want[i], 1e-12) << i;
}

TEST(GrpoAdvantages, EqualRewardsAndSingletonGroupsGiveExactlyZero) {
  // (0.1 + 0.1 + 0.1)/3 != 0.1 in binary: the zero must not be a rounding residue over eps.
  for (bool std_scale : {true, false}) {
    for (double x : group_advantages(std::vector<double>{0.1, 0.1, 0.1}, 3, {.scale_by_std = std_scale}))
      EXPECT_EQ(x, 0.0);
    for (double x : group_advantages(std::vector<double>{1.0, 0.0, 0.7}, 1, {.scale_by_std = std_scale}))
      EXPECT_EQ(x, 0.0);
  }
  EXPECT_TRUE(group_advantages(std::vector<double>{}, 16).empty());
}

TEST(GrpoAdvantages, BadGroupingIsAnError) {
  EXPECT_THROW(group_advantages(std::vector<double>{1, 0, 1}, 2), Error);
  EXPECT_THROW(group_advantages(std::vector<double>{1, 0}, 0), Error);
}

// ---- The clipped objective -------------------------------------------------------------------------

// One completion token with advantage A and ratio ρ (old_logp = −1, logp = −1 + log ρ), no KL.
GrpoLoss one_token(double A, double rho, GrpoLossOptions opt = {.beta = 0.0}) {
  const std::vector<double> logp = {-1.0 + std::log(rho)}, old = {-1.0}, adv = {A};
  const std::vector<uint8_t> mask = {1};
  const std::vector<int64_t> len = {1};
  return grpo_loss({.logp = logp, .old_logp = old, .ref_logp = {}, .mask = mask, .seq_len = len,
                    .advantage = adv},
                   opt);
}

TEST(GrpoObjective, EachClipRegimeByHand) {
  struct Case {
    double A, rho, loss, grad;
    bool clipped;
  };
  // loss = −min(ρA, clip(ρ, 0.8, 1.2)A); grad = ∂loss/∂logp = −ρA unless clipped (then 0).
  const Case cases[] = {
      {2.0, 1.5, -2.4, 0.0, true},    // A > 0, ρ > 1+ε: clipped at 1.2·2
      {-1.0, 0.5, 0.8, 0.0, true},    // A < 0, ρ < 1−ε: clipped at 0.8·(−1)
      {2.0, 0.5, -1.0, -1.0, false},  // A > 0, ρ < 1−ε: min picks ρA, still pushed up
      {-1.0, 1.5, 1.5, 1.5, false},   // A < 0, ρ > 1+ε: min picks ρA (the pessimistic bound)
      {1.0, 1.1, -1.1, -1.1, false},  // inside the range
      {0.0, 1.5, 0.0, 0.0, false},    // no advantage: no gradient, but not a clip
  };
  for (const Case& c : cases) {
    const GrpoLoss r = one_token(c.A, c.rho);
    EXPECT_NEAR(r.loss, c.loss, 1e-12) << c.A << " " << c.rho;
    EXPECT_NEAR(r.dlogp[0], c.grad, 1e-12) << c.A << " " << c.rho;
    EXPECT_EQ(r.clip_fraction, c.clipped ? 1.0 : 0.0) << c.A << " " << c.rho;
    EXPECT_NEAR(r.ratio_mean, c.rho, 1e-12);
    EXPECT_EQ(r.adv_abs_mean, std::abs(c.A));
  }
  // DAPO's clip-higher: with ε_high = 0.28, ρ = 1.25 is inside the range.
  const GrpoLoss hi = one_token(1.0, 1.25, {.eps_low = 0.2, .eps_high = 0.28, .beta = 0.0});
  EXPECT_NEAR(hi.loss, -1.25, 1e-12);
  EXPECT_NEAR(hi.dlogp[0], -1.25, 1e-12);
  EXPECT_EQ(hi.clip_fraction, 0.0);
  EXPECT_EQ(one_token(1.0, 1.25).clip_fraction, 1.0);
}

TEST(GrpoObjective, ABatchWithKlAndAPromptTokenByHand) {
  // Sequence 0: a prompt token (masked) and two completion tokens; sequence 1: one token.
  const std::vector<double> logp = {-0.3, -1.0, -2.0, -0.5};
  const std::vector<double> old = {-9.0, -1.0, -2.1, -0.5};
  const std::vector<double> ref = {-9.0, -1.2, -2.0, -0.4};
  const std::vector<uint8_t> mask = {0, 1, 1, 1};
  const std::vector<int64_t> len = {3, 1};
  const std::vector<double> adv = {1.0, -0.5};
  const double beta = 0.1;
  const PolicyTokens in{logp, old, ref, mask, len, adv};
  // Per token: ρ, KL = e^d − d − 1 with d = ref − logp.
  const double r1 = 1.0, r2 = std::exp(0.1), r3 = 1.0;
  const double k1 = std::exp(-0.2) + 0.2 - 1, k2 = 0.0, k3 = std::exp(0.1) - 0.1 - 1;
  const double term1 = r1 * 1.0 - beta * k1, term2 = r2 * 1.0 - beta * k2;
  const double term3 = r3 * -0.5 - beta * k3;
  // GRPO: −(1/2)[(term1 + term2)/2 + term3/1].
  GrpoLoss g = grpo_loss(in, {.beta = beta});
  EXPECT_NEAR(g.loss, -0.5 * ((term1 + term2) / 2 + term3), 1e-12);
  EXPECT_EQ(g.dlogp[0], 0.0);  // the prompt token gets no gradient
  EXPECT_NEAR(g.dlogp[1], -0.25 * (r1 * 1.0 - beta * (1 - std::exp(-0.2))), 1e-12);
  EXPECT_NEAR(g.dlogp[2], -0.25 * r2, 1e-12);
  EXPECT_NEAR(g.dlogp[3], -0.5 * (r3 * -0.5 - beta * (1 - std::exp(0.1))), 1e-12);
  EXPECT_EQ(g.tokens, 3);
  EXPECT_NEAR(g.kl_mean, (k1 + k2 + k3) / 3, 1e-12);
  EXPECT_NEAR(g.ratio_mean, (r1 + r2 + r3) / 3, 1e-12);
  EXPECT_NEAR(g.adv_abs_mean, (1.0 + 1.0 + 0.5) / 3, 1e-12);
  EXPECT_EQ(g.clip_fraction, 0.0);
  // DAPO token mean: −(term1 + term2 + term3)/3.
  g = grpo_loss(in, {.beta = beta, .norm = LossNorm::Token});
  EXPECT_NEAR(g.loss, -(term1 + term2 + term3) / 3, 1e-12);
  // Dr. GRPO constant L = 8: −(1/2)(term1 + term2 + term3)/8.
  g = grpo_loss(in, {.beta = beta, .norm = LossNorm::Constant, .max_len = 8});
  EXPECT_NEAR(g.loss, -0.5 * (term1 + term2 + term3) / 8, 1e-12);
  EXPECT_NEAR(g.dlogp[3], -(1.0 / 16) * (r3 * -0.5 - beta * (1 - std::exp(0.1))), 1e-12);
}

TEST(GrpoObjective, KlIsNonNegativeAndZeroWhenThePoliciesMatch) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(0.0, 2.0);
  for (int trial = 0; trial < 2000; ++trial) {
    const double lp = -std::abs(d(rng)), ref = lp + d(rng) * (trial % 2 ? 1e-6 : 1.0);
    const std::vector<double> logp = {lp}, refv = {ref}, adv = {0.0};
    const std::vector<uint8_t> mask = {1};
    const std::vector<int64_t> len = {1};
    const GrpoLoss g = grpo_loss({logp, logp, refv, mask, len, adv}, {.beta = 0.04});
    EXPECT_GE(g.kl_mean, 0.0) << lp << " " << ref;
    EXPECT_GE(g.loss, 0.0);  // with A = 0 the loss is β·KL
    const GrpoLoss same = grpo_loss({logp, logp, logp, mask, len, adv}, {.beta = 0.04});
    EXPECT_EQ(same.kl_mean, 0.0);
    EXPECT_EQ(same.dlogp[0], 0.0);
  }
}

// A random batch with tokens kept off the clip bounds (where the loss has a kink).
struct RandomBatch {
  std::vector<double> logp, old, ref, adv;
  std::vector<uint8_t> mask;
  std::vector<int64_t> len;
  PolicyTokens view(bool with_ref) const {
    return {logp, old, with_ref ? std::span<const double>(ref) : std::span<const double>(), mask,
            len, adv};
  }
};

RandomBatch random_batch(std::mt19937_64& rng, double eps) {
  std::uniform_int_distribution<int> n_seq(1, 4), n_tok(0, 6), coin(0, 3);
  std::uniform_real_distribution<double> lp(-4.0, -0.01);
  std::normal_distribution<double> shift(0.0, 0.3), a(0.0, 1.0);
  RandomBatch b;
  for (int i = 0, n = n_seq(rng); i < n; ++i) {
    const int len = n_tok(rng);
    b.len.push_back(len);
    b.adv.push_back(a(rng));
    for (int t = 0; t < len; ++t) {
      const double x = lp(rng);
      double o = x + shift(rng);
      const double rho = std::exp(x - o);
      if (std::abs(rho - (1 + eps)) < 1e-3 || std::abs(rho - (1 - eps)) < 1e-3) o = x;
      b.logp.push_back(x);
      b.old.push_back(o);
      b.ref.push_back(x + shift(rng));
      b.mask.push_back(coin(rng) != 0 ? 1 : 0);  // some prompt/padding tokens
    }
  }
  return b;
}

TEST(GrpoObjective, GradientMatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(42);
  const double h = 1e-6;
  int checked = 0, clipped = 0;
  for (int trial = 0; trial < 300; ++trial) {
    RandomBatch b = random_batch(rng, 0.2);
    const bool with_ref = trial % 2 == 0;
    GrpoLossOptions opt{.beta = with_ref ? 0.04 : 0.0};
    opt.norm = LossNorm(trial % 3);
    opt.max_len = 6;
    const GrpoLoss g = grpo_loss(b.view(with_ref), opt);
    for (size_t t = 0; t < b.logp.size(); ++t) {
      const double x = b.logp[t];
      b.logp[t] = x + h;
      const double up = grpo_loss(b.view(with_ref), opt).loss;
      b.logp[t] = x - h;
      const double down = grpo_loss(b.view(with_ref), opt).loss;
      b.logp[t] = x;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g.dlogp[t], fd, 1e-8 + 1e-6 * std::abs(fd)) << trial << " token " << t;
      ++checked;
    }
    clipped += g.clip_fraction > 0 ? 1 : 0;
  }
  EXPECT_GT(checked, 1000);
  EXPECT_GT(clipped, 10);  // the cases cover the clipped regime too
}

TEST(GrpoObjective, OnPolicyGradientIsThePlainPolicyGradient) {
  // μ = 1: logp == old_logp, so ρ = 1, the clip is inactive and ∂loss/∂logp = −A_i/(n·|o_i|);
  // at ref == logp the KL term adds no gradient either.
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    RandomBatch b = random_batch(rng, 0.2);
    b.old = b.logp;
    for (bool with_ref : {false, true}) {
      if (with_ref) b.ref = b.logp;
      const GrpoLoss g = grpo_loss(b.view(with_ref), {.beta = with_ref ? 0.04 : 0.0});
      const double n = double(b.len.size());
      size_t t0 = 0;
      for (size_t i = 0; i < b.len.size(); ++i) {
        int64_t len = 0;
        for (size_t t = t0; t < t0 + size_t(b.len[i]); ++t) len += b.mask[t];
        for (size_t t = t0; t < t0 + size_t(b.len[i]); ++t) {
          const double want = b.mask[t] ? -b.adv[i] / (n * double(len)) : 0.0;
          EXPECT_NEAR(g.dlogp[t], want, 1e-15) << trial << " token " << t;
        }
        t0 += size_t(b.len[i]);
      }
      EXPECT_EQ(g.clip_fraction, 0.0);
      if (g.tokens) {
        EXPECT_EQ(g.ratio_mean, 1.0);
      }
    }
  }
}

TEST(GrpoObjective, MicroBatchesWithTheBatchNormalizersAddUpToTheBatch) {
  std::mt19937_64 rng(11);
  RandomBatch b;
  while (b.len.size() < 3) b = random_batch(rng, 0.2);
  for (LossNorm norm : {LossNorm::Sequence, LossNorm::Token, LossNorm::Constant}) {
    GrpoLossOptions opt{.beta = 0.04, .norm = norm, .max_len = 6};
    const GrpoLoss whole = grpo_loss(b.view(true), opt);
    opt.batch_sequences = int64_t(b.len.size());
    opt.batch_tokens = whole.tokens;
    // Split after the first sequence.
    const size_t T0 = size_t(b.len[0]);
    const auto part = [&](size_t s0, size_t s1, size_t t0, size_t t1) {
      const PolicyTokens in{std::span(b.logp).subspan(t0, t1 - t0),
                            std::span(b.old).subspan(t0, t1 - t0),
                            std::span(b.ref).subspan(t0, t1 - t0),
                            std::span(b.mask).subspan(t0, t1 - t0),
                            std::span(b.len).subspan(s0, s1 - s0),
                            std::span(b.adv).subspan(s0, s1 - s0)};
      return grpo_loss(in, opt);
    };
    const GrpoLoss p1 = part(0, 1, 0, T0), p2 = part(1, b.len.size(), T0, b.logp.size());
    EXPECT_NEAR(p1.loss + p2.loss, whole.loss, 1e-12);
    for (size_t t = 0; t < b.logp.size(); ++t)
      EXPECT_EQ(t < T0 ? p1.dlogp[t] : p2.dlogp[t - T0], whole.dlogp[t]) << t;
  }
}

TEST(GrpoObjective, InconsistentInputsAreErrors) {
  const std::vector<double> lp = {-1, -1}, adv = {1};
  const std::vector<uint8_t> mask = {1, 1};
  const std::vector<int64_t> len = {2}, bad_len = {3};
  EXPECT_NO_THROW(grpo_loss({lp, lp, {}, mask, len, adv}, {.beta = 0.0}));
  EXPECT_THROW(grpo_loss({lp, lp, {}, mask, len, adv}, {.beta = 0.04}), Error);  // no reference
  EXPECT_THROW(grpo_loss({lp, lp, {}, mask, bad_len, adv}, {.beta = 0.0}), Error);
  EXPECT_THROW(grpo_loss({lp, std::span(lp).first(1), {}, mask, len, adv}, {.beta = 0.0}), Error);
  EXPECT_THROW(grpo_loss({lp, lp, {}, mask, len, {}}, {.beta = 0.0}), Error);
  EXPECT_THROW(grpo_loss({lp, lp, {}, mask, len, adv}, {.beta = 0.0, .norm = LossNorm::Constant}),
               Error);  // Dr. GRPO without max_len
  const std::vector<double> nan_lp = {-1, std::nan("")}, inf_lp = {-1, -INFINITY};
  EXPECT_THROW(grpo_loss({nan_lp, lp, {}, mask, len, adv}, {.beta = 0.0}), Error);
  EXPECT_THROW(grpo_loss({lp, inf_lp, {}, mask, len, adv}, {.beta = 0.0}), Error);
  EXPECT_THROW(grpo_loss({lp, lp, inf_lp, mask, len, adv}, {.beta = 0.04}), Error);
  const std::vector<double> nan_adv = {std::nan("")};
  EXPECT_THROW(grpo_loss({lp, lp, {}, mask, len, nan_adv}, {.beta = 0.0}), Error);
  // A prompt token's log-probs are never read: -inf there (nothing stored) is fine.
  const std::vector<uint8_t> prompt_first = {0, 1};
  const std::vector<double> inf_first = {-INFINITY, -1};
  EXPECT_NO_THROW(grpo_loss({lp, inf_first, inf_first, prompt_first, len, adv}, {.beta = 0.04}));
}

// ---- Log-probs to logits -----------------------------------------------------------------------------

double log_softmax_at(const std::vector<double>& l, int y) {
  double mx = l[0], s = 0.0;
  for (double x : l) mx = std::max(mx, x);
  for (double x : l) s += std::exp(x - mx);
  return l[size_t(y)] - mx - std::log(s);
}

TEST(GrpoLogits, TokenLogprobGradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> d(0.0f, 2.0f);
  for (int trial = 0; trial < 50; ++trial) {
    const int V = 3 + trial % 9, y = trial % V;
    const float coef = 0.3f - 0.05f * float(trial % 13);
    std::vector<float> row(static_cast<size_t>(V));
    for (float& x : row) x = d(rng);
    std::vector<double> ld(row.begin(), row.end());
    std::vector<float> grad = row;
    const double lp = token_logprob(grad.data(), V, y, true, coef);
    EXPECT_NEAR(lp, log_softmax_at(ld, y), 1e-6);
    std::vector<float> same = row;
    EXPECT_EQ(token_logprob(same.data(), V, y, false, coef), lp);
    EXPECT_EQ(same, row);  // forward only leaves the row alone
    const double h = 1e-6;
    for (int v = 0; v < V; ++v) {
      ld[size_t(v)] += h;
      const double up = log_softmax_at(ld, y);
      ld[size_t(v)] -= 2 * h;
      const double down = log_softmax_at(ld, y);
      ld[size_t(v)] += h;
      EXPECT_NEAR(grad[size_t(v)], coef * (up - down) / (2 * h), 1e-6) << trial << " v " << v;
    }
  }
  std::vector<float> row = {0.0f, 1.0f};
  EXPECT_THROW(token_logprob(row.data(), 2, 2, false, 1.0f), Error);
}

TEST(GrpoLogits, LossGradientThroughTheLogitsMatchesFiniteDifferences) {
  // The composition the trainer runs: rows -> logp (log_softmax at the sampled token) ->
  // grpo_loss -> dlogp -> token_logprob's backward -> drows, against the FD of the loss as a
  // function of the rows.
  std::mt19937_64 rng(9);
  std::normal_distribution<float> d(0.0f, 1.5f);
  std::normal_distribution<double> shift(0.0, 0.2);
  const int V = 6, T = 5;
  const std::vector<int64_t> len = {3, 2};
  const std::vector<double> adv = {0.8, -1.3};
  const std::vector<uint8_t> mask = {0, 1, 1, 1, 1};
  const std::vector<int> y = {1, 4, 0, 2, 5};
  std::vector<double> rows(static_cast<size_t>(T * V)), old(static_cast<size_t>(T)), ref(static_cast<size_t>(T));
  for (double& x : rows) x = double(d(rng));
  const auto logps = [&](const std::vector<double>& r) {
    std::vector<double> lp(static_cast<size_t>(T));
    for (int t = 0; t < T; ++t)
      lp[size_t(t)] = log_softmax_at(std::vector<double>(r.begin() + t * V, r.begin() + (t + 1) * V),
                                     y[size_t(t)]);
    return lp;
  };
  const std::vector<double> lp0 = logps(rows);
  for (int t = 0; t < T; ++t) {
    old[size_t(t)] = lp0[size_t(t)] + shift(rng);
    ref[size_t(t)] = lp0[size_t(t)] + shift(rng);
  }
  const GrpoLossOptions opt{.beta = 0.04};
  const auto loss_at = [&](const std::vector<double>& r) {
    const std::vector<double> lp = logps(r);
    return grpo_loss({lp, old, ref, mask, len, adv}, opt).loss;
  };
  const GrpoLoss g = grpo_loss({lp0, old, ref, mask, len, adv}, opt);
  const double h = 1e-6;
  for (int t = 0; t < T; ++t) {
    std::vector<float> row(rows.begin() + t * V, rows.begin() + (t + 1) * V);
    token_logprob(row.data(), V, y[size_t(t)], true, float(g.dlogp[size_t(t)]));
    for (int v = 0; v < V; ++v) {
      std::vector<double> r = rows;
      r[size_t(t * V + v)] += h;
      const double up = loss_at(r);
      r[size_t(t * V + v)] -= 2 * h;
      const double fd = (up - loss_at(r)) / (2 * h);
      EXPECT_NEAR(row[size_t(v)], fd, 1e-6) << "token " << t << " v " << v;
    }
  }
}

TEST(GrpoLogits, Entropy) {
  std::vector<float> uniform(10, 3.5f);
  EXPECT_NEAR(entropy(uniform.data(), 10), std::log(10.0), 1e-12);
  std::vector<float> peaked = {0.0f, 200.0f, 0.0f};
  EXPECT_NEAR(entropy(peaked.data(), 3), 0.0, 1e-12);
  std::vector<float> row = {1.0f, -2.0f, 0.5f, 3.0f};
  std::vector<double> p(row.begin(), row.end());
  double z = 0.0, h = 0.0;
  for (double& x : p) z += (x = std::exp(x));
  for (double x : p) h -= (x / z) * std::log(x / z);
  EXPECT_NEAR(entropy(row.data(), 4), h, 1e-12);
}

}  // namespace
