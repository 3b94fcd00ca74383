// Auxiliary-loss-free balancing: with a router that starts strongly skewed (two of eight experts
// favoured by every token), the per-step ±γ bias update drives MaxVio down, while the same
// training without it stays unbalanced. Also the bias rule itself and MaxVio.
#include <gtest/gtest.h>

#include <random>

#include "model/params.h"
#include "model/test_configs.h"
#include "model/transformer.h"
#include "train/balance.h"
#include "train/optimizer.h"

using namespace seek;
using namespace seek::train;

TEST(Balance, MaxViolation) {
  EXPECT_DOUBLE_EQ(max_violation({5, 5, 5, 5}), 0.0);
  EXPECT_DOUBLE_EQ(max_violation({8, 0, 0, 0}), 3.0);
}

TEST(Balance, BiasMovesAgainstTheLoad) {
  model::ModelConfig c = model::test::tiny_v3();
  model::Params p = model::Params::init(c, 0.1, 1);
  update_balance_bias(p, {1}, {{10, 2, 4, 4}}, 0.01);
  const float* b = p.ptr("model.layers.1.mlp.gate.e_score_correction_bias");
  EXPECT_FLOAT_EQ(b[0], -0.01f);  // overloaded
  EXPECT_FLOAT_EQ(b[1], 0.01f);   // underloaded
  EXPECT_FLOAT_EQ(b[2], 0.01f);   // below the mean 5
}

namespace {

// Mean MaxVio of the MoE layer over the last 20 of 100 steps.
double train_maxvio(double gamma) {
  model::ModelConfig c = model::test::tiny_v3(64);
  c.n_routed_experts = 8;
  c.n_group = 1;
  c.topk_group = 1;
  c.num_nextn_predict_layers = 0;
  model::Params p = model::Params::init(c, 0.2, 3);
  // Skew: every hidden state shares a direction u that experts 0 and 1 respond to.
  const int64_t H = c.hidden_size;
  std::vector<float> u(static_cast<size_t>(H));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  for (float& x : u) x = nd(rng);
  float* emb = p.ptr("model.embed_tokens.weight");
  for (int64_t v = 0; v < c.vocab_size; ++v)
    for (int64_t j = 0; j < H; ++j) emb[v * H + j] += 0.1f * u[size_t(j)];
  float* gate = p.ptr("model.layers.1.mlp.gate.weight");
  for (int e : {0, 1})
    for (int64_t j = 0; j < H; ++j) gate[e * H + j] += 0.5f * u[size_t(j)];
  AdamW opt(p, {});
  std::vector<float> grad(p.size());
  double sum = 0;
  for (int step = 0; step < 100; ++step) {
    std::vector<int32_t> t;
    for (int64_t i = 0; i < 8 * 17; ++i) t.push_back(int32_t(rng() % 64));
    const model::TokenBatch b = model::TokenBatch::rows(8, 16, std::move(t));
    std::fill(grad.begin(), grad.end(), 0.f);
    model::ModelWeights w = p.weights();
    model::ModelGrads g = p.grads(grad.data());
    model::StepResult r = model::forward_backward(c, w, g, b, {});
    opt.step(p, grad, 1e-3);
    update_balance_bias(p, r.moe_layers, r.expert_load, gamma);
    if (step >= 80) sum += max_violation(r.expert_load[0]);
  }
  return sum / 20;
}

}  // namespace

TEST(Balance, BiasUpdateBalancesTheLoad) {
  const double without = train_maxvio(0.0), with = train_maxvio(0.02);
  std::printf("MaxVio over the last 20 of 100 steps: without bias update %.2f, with (γ = 0.02) %.2f\n", without, with);
  EXPECT_GT(without, 1.0);
  EXPECT_LT(with, 0.5 * without);
}
