// The objective's terms (loss.h) against their definitions.
#include "model/loss.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace seek;
using namespace seek::model;

namespace {

TEST(Loss, CrossEntropyAndItsGradient) {
  std::vector<float> l = {1.0f, 2.0f, 3.0f, -1.0f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-1.0);
  std::vector<float> copy = l;
  // The exponentials are float (kernels::exp_shifted, within 2 ulp), summed in double.
  EXPECT_NEAR(cross_entropy(copy.data(), 4, 1, false, 0.5f), std::log(z) - 2.0, 1e-7);
  EXPECT_EQ(copy, l);  // loss only: the row is left alone
  EXPECT_NEAR(cross_entropy(l.data(), 4, 1, true, 0.5f), std::log(z) - 2.0, 1e-7);
  for (int v = 0; v < 4; ++v) {
    const double p = std::exp(double(std::vector<float>{1, 2, 3, -1}[size_t(v)])) / z;
    EXPECT_NEAR(l[size_t(v)], 0.5 * (p - (v == 1 ? 1.0 : 0.0)), 1e-6) << v;
  }
  // A zero coefficient still writes the (zero) gradient: backward must not see raw logits.
  std::vector<float> zero = {1.0f, 2.0f};
  cross_entropy(zero.data(), 2, 0, true, 0.0f);
  EXPECT_EQ(zero, (std::vector<float>{0.0f, 0.0f}));
}

TEST(Loss, BalanceLossOfAUniformRoutingIsAlpha) {
  // Softmax scores spread evenly and every expert chosen equally often: f_i = 1, P_i = 1/E, so
  // L = α Σ_i f_i P_i = α.
  ModelConfig cfg;
  cfg.n_routed_experts = 4;
  cfg.scoring_func = ScoringFunc::Softmax;
  Routing r;
  r.k = 2;
  r.experts = {0, 1, 2, 3};           // 2 tokens × k = 2
  r.scores.assign(8, 0.25f);          // [2, 4]
  Batch b;
  b.tokens = {0, 0};
  b.seqs = {{0, 0, 2, true}};
  std::vector<float> ds(8, 0.0f);
  EXPECT_NEAR(balance_loss(cfg, r, b, 0.1, 1.0f, ds.data()), 0.1, 1e-12);
  // ∂L/∂s_{e,t} = α f_e / n = 0.05 for softmax scores (no renormalization).
  for (float d : ds) EXPECT_NEAR(d, 0.05f, 1e-7);
}

}  // namespace
