// The training objective over variable-length sequences (what SFT packing, GRPO and reward
// models build on): packed samples are independent of each other, masked targets carry no
// gradient, a token objective reproduces cross-entropy, and a model over borrowed float32
// weights computes what the loaded checkpoint computes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/params.h"
#include "model/transformer.h"
#include "test_configs.h"

using namespace seek;
using namespace seek::model;

namespace {

std::vector<int32_t> random_tokens(const ModelConfig& c, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; ++i) t.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  return t;
}

TokenBatch concat(const std::vector<const TokenBatch*>& parts) {
  TokenBatch b;
  for (const TokenBatch* p : parts) {
    b.tokens.insert(b.tokens.end(), p->tokens.begin(), p->tokens.end());
    b.lengths.insert(b.lengths.end(), p->lengths.begin(), p->lengths.end());
    b.weights.insert(b.weights.end(), p->weights.begin(), p->weights.end());
  }
  return b;
}

struct RunResult {
  StepResult r;
  std::vector<float> grad;
};

RunResult run(const Params& p, const TokenBatch& b, const ObjectiveOptions& o) {
  RunResult out;
  out.grad.assign(p.size(), 0.0f);
  ModelGrads g = p.grads(out.grad.data());
  out.r = forward_backward(p.config(), p.weights(), g, b, o);
  return out;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  EXPECT_LE(worst, tol * scale) << "max |Δgrad| " << worst << " of max |grad| " << scale;
}

}  // namespace

// Two samples in one batch give the sum of what each gives alone (with one normalizer for all):
// attention does not cross from one to the other and positions restart at 0. Also the MTP
// module and the MoE routing see each sample alone.
TEST(Objective, PackedSamplesAreIndependent) {
  const ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 3);
  TokenBatch a, b;
  a.tokens = random_tokens(c, 7, 1), a.lengths = {6};
  b.tokens = random_tokens(c, 10, 2), b.lengths = {9};
  ObjectiveOptions o;
  o.weight_total = 15;  // every run normalizes by the packed batch's targets
  const RunResult ra = run(p, a, o), rb = run(p, b, o), rab = run(p, concat({&a, &b}), o);
  EXPECT_NEAR(rab.r.loss, ra.r.loss + rb.r.loss, 1e-6 * rab.r.loss);
  EXPECT_NEAR(rab.r.ce, ra.r.ce + rb.r.ce, 1e-6 * rab.r.ce);
  std::vector<float> sum(p.size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = ra.grad[i] + rb.grad[i];
  expect_close(rab.grad, sum, 1e-5);
  // Without the shared normalizer, the packed CE is the token mean over both samples.
  const RunResult packed = run(p, concat({&a, &b}), {});
  EXPECT_NEAR(packed.r.ce, rab.r.ce, 1e-9);
  EXPECT_EQ(packed.r.tokens, 15);
}

// A target of weight 0 does not count: changing it changes neither the loss nor a gradient.
TEST(Objective, MaskedTargetsCarryNoGradient) {
  const ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 4);
  TokenBatch b;
  b.tokens = random_tokens(c, 9, 5), b.lengths = {8};
  b.weights = {0, 0, 0, 1, 1, 1, 1, 0};  // the last target (only ever a target) is masked
  const RunResult r1 = run(p, b, {});
  b.tokens.back() = (b.tokens.back() + 1) % int32_t(c.vocab_size);
  const RunResult r2 = run(p, b, {});
  EXPECT_EQ(r1.r.loss, r2.r.loss);
  EXPECT_EQ(r1.grad, r2.grad);
  EXPECT_EQ(r1.r.tokens, 4);
  // ... while changing an unmasked target does change the loss.
  b.tokens[5] = (b.tokens[5] + 1) % int32_t(c.vocab_size);
  EXPECT_NE(run(p, b, {}).r.loss, r1.r.loss);
  // Weights scale: all-2 weights give the same mean as no weights.
  TokenBatch u = b, w = b;
  u.weights.clear();
  w.weights.assign(8, 2.0f);
  EXPECT_NEAR(run(p, u, {}).r.ce, run(p, w, {}).r.ce, 1e-9);
}

// The token objective −logp / T is cross-entropy: same loss, same gradients.
TEST(Objective, TokenObjectiveReproducesCrossEntropy) {
  const ModelConfig c = test::tiny_v2();
  Params p = Params::init(c, 0.3, 6);
  TokenBatch b;
  b.tokens = random_tokens(c, 13, 7), b.lengths = {5, 6};
  const RunResult ce = run(p, b, {});
  ObjectiveOptions o;
  int64_t calls = 0;
  o.token_objective = [&](int64_t row, double logp, std::span<const float> logits, double& dlogp) {
    EXPECT_EQ(row, calls++);
    EXPECT_EQ(int64_t(logits.size()), c.vocab_size);
    dlogp = -1.0 / 11;
    return -logp / 11;
  };
  const RunResult tok = run(p, b, o);
  EXPECT_EQ(calls, 11);
  EXPECT_NEAR(tok.r.loss, ce.r.loss, 1e-9);
  EXPECT_NEAR(tok.r.ce, ce.r.ce, 1e-9);
  expect_close(tok.grad, ce.grad, 1e-5);
}

TEST(Objective, BadBatchesGetClearErrors) {
  const ModelConfig c = test::tiny_v2();
  Params p = Params::init(c, 0.3, 8);
  auto error_of = [&](const TokenBatch& b) {
    try {
      run(p, b, {});
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  TokenBatch b;
  b.tokens = random_tokens(c, 6, 9), b.lengths = {6};
  EXPECT_NE(error_of(b).find("6 tokens for 1 sequences that need 7"), std::string::npos);
  b.lengths = {0, 4};
  EXPECT_NE(error_of(b).find("a sequence of 0 targets"), std::string::npos);
  b.lengths = {5};
  b.weights = {1, 1};
  EXPECT_NE(error_of(b).find("2 weights for 5 targets"), std::string::npos);
}

// A Model over borrowed float32 weights (GRPO decodes the policy being trained) computes the
// checkpoint's logits.
TEST(Objective, BorrowedWeightsForwardLikeTheLoadedModel) {
  const std::string dir = SEEK_FIXTURES "/models/v3-tiny";
  auto loaded = Model::load(dir);
  const Params p = Params::load(loaded->config(), dir);
  auto borrowed = Model::borrow(loaded->config(), p.weights());
  Batch batch;
  batch.tokens = {5, 17, 42, 99, 3};
  batch.seqs = {{0, 0, 5, true}};
  std::vector<float> la, lb;
  KVCache ca(loaded->config(), 1, 16), cb(loaded->config(), 1, 16);
  forward(*loaded, ca, batch, la);
  forward(*borrowed, cb, batch, lb);
  ASSERT_EQ(la.size(), lb.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    worst = std::max(worst, std::fabs(double(la[i]) - lb[i]));
    scale = std::max(scale, std::fabs(double(la[i])));
  }
  EXPECT_LE(worst, 1e-4 * scale);
  EXPECT_GT(scale, 0.0);
}
