// Finite-difference gradient checks of every backward pass: the whole model (embedding, every
// MLA projection incl. both q paths, RoPE/YaRN, attention, RMSNorms, SwiGLU, router + experts +
// shared experts, head, MTP module) under the full objective, and each layer on its own.
//
// Precision: the forward runs in float32 (it is the inference code), so the check uses central
// differences f(θ±ε) with ε = 1e-2 on weights of scale ~0.3: truncation error O(ε²·f''') ~ 1e-5,
// rounding error ~ 2^-24·|f|·(#ops)^½ / ε ~ 1e-5 for |f| ~ 4; the loss itself is summed in
// double. Entries are compared with |fd − an| ≤ 2e-3 + 3e-2·|an|, a bound ~10× above the
// combined error budget and ~10× below the size of a typical wrong gradient (e.g. a missing
// factor or a transposed term). Coordinates whose perturbation changes the discrete expert
// choice (the loss is not differentiable there) are skipped and counted.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "model/mla.h"
#include "model/moe.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_configs.h"

using namespace seek;
using namespace seek::model;

namespace {

struct CheckStats {
  int checked = 0, skipped = 0, failed = 0;
};

model::TokenBatch random_batch(const model::ModelConfig& c, int64_t B, int64_t S, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t;
  for (int64_t i = 0; i < B * (S + 1); ++i) t.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  return model::TokenBatch::rows(B, S, std::move(t));
}

// Checks up to `per_tensor` random coordinates of every trainable tensor of `p`.
CheckStats check_model(Params& p, const model::TokenBatch& batch, model::ObjectiveOptions opts, int per_tensor) {
  std::vector<float> grad(p.size(), 0.0f);
  model::ModelGrads g = p.grads(grad.data());
  model::ModelWeights w = p.weights();
  model::StepResult base = model::forward_backward(p.config(), w, g, batch, opts);
  model::ObjectiveOptions fo = opts;
  fo.backward = false;
  const float eps = 1e-2f;
  std::mt19937 rng(7);
  CheckStats st;
  for (const ParamInfo& info : p.infos()) {
    if (!info.trainable) continue;
    for (int r = 0; r < per_tensor; ++r) {
      const size_t i = info.offset + size_t(rng() % uint64_t(info.numel));
      const float orig = p.data()[i];
      model::ModelGrads none;
      p.data()[i] = orig + eps;
      w = p.weights();
      model::StepResult up = model::forward_backward(p.config(), w, none, batch, fo);
      p.data()[i] = orig - eps;
      w = p.weights();
      model::StepResult dn = model::forward_backward(p.config(), w, none, batch, fo);
      p.data()[i] = orig;
      if (up.expert_load != base.expert_load || dn.expert_load != base.expert_load) {
        ++st.skipped;
        continue;
      }
      const double fd = (up.loss - dn.loss) / (2.0 * eps), an = grad[i];
      ++st.checked;
      if (std::fabs(fd - an) > 2e-3 + 3e-2 * std::fabs(an)) {
        ++st.failed;
        ADD_FAILURE() << info.name << "[" << (i - info.offset) << "]: analytic " << an
                      << " vs finite difference " << fd;
      }
    }
  }
  return st;
}

}  // namespace

TEST(GradCheck, WholeModelV3WithMtpAndBalanceLoss) {
  const model::ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 1);
  // A non-zero router bias so selection and gate values differ (noaux_tc).
  for (const ParamInfo& i : p.infos())
    if (!i.trainable)
      for (int64_t j = 0; j < i.numel; ++j) p.data()[i.offset + size_t(j)] = 0.05f * float(j % 3);
  model::ObjectiveOptions o;
  o.mtp_lambda = 0.3;
  o.balance_alpha = 0.1;  // large so its gradient is visible in the check
  CheckStats st = check_model(p, random_batch(c, 2, 7, 3), o, 4);
  EXPECT_GT(st.checked, 150);
  EXPECT_LT(st.skipped, st.checked / 4);
  EXPECT_EQ(st.failed, 0);
}

TEST(GradCheck, WholeModelV2LiteShape) {
  const model::ModelConfig c = test::tiny_v2();
  Params p = Params::init(c, 0.3, 2);
  model::ObjectiveOptions o;
  o.balance_alpha = 0.05;
  CheckStats st = check_model(p, random_batch(c, 2, 6, 4), o, 4);
  EXPECT_GT(st.checked, 100);
  EXPECT_EQ(st.failed, 0);
}

TEST(GradCheck, RecomputeGivesIdenticalGradients) {
  const model::ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 5);
  model::TokenBatch b = random_batch(c, 2, 8, 9);
  std::vector<float> g1(p.size(), 0.f), g2(p.size(), 0.f);
  model::ModelGrads a = p.grads(g1.data()), r = p.grads(g2.data());
  model::ModelWeights w = p.weights();
  model::ObjectiveOptions o;
  o.balance_alpha = 0.01;
  model::StepResult s1 = model::forward_backward(c, w, a, b, o);
  o.recompute = true;
  model::StepResult s2 = model::forward_backward(c, w, r, b, o);
  EXPECT_EQ(s1.loss, s2.loss);
  EXPECT_EQ(g1, g2);
  EXPECT_LT(s2.tape_bytes, s1.tape_bytes);
}

// ---- per layer: loss = Σ R ⊙ layer(x) for a fixed random R, checked w.r.t. the layer's own
// weights and its input ----
namespace {

struct LayerCase {
  model::ModelConfig cfg = test::tiny_v3();
  Params p = Params::init(cfg, 0.3, 11);
  int64_t B = 2, S = 5, T = B * S, H = cfg.hidden_size;
  model::Batch batch;
  std::vector<int64_t> pos;
  std::vector<float> x, R;
  LayerCase() {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int64_t b = 0; b < B; ++b) {
      batch.seqs.push_back({int(b), 0, S, true});
      for (int64_t i = 0; i < S; ++i) {
        batch.tokens.push_back(0);
        pos.push_back(i);
      }
    }
    for (int64_t i = 0; i < T * H; ++i) x.push_back(nd(rng));
    for (int64_t i = 0; i < T * H; ++i) R.push_back(nd(rng));
  }
  double dot(const std::vector<float>& y) const {
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(R[i]) * double(y[i]);
    return s;
  }
};

// Compares grad (of weights with names starting with `prefix`, and of the input) with central
// differences of loss().
void check_layer(LayerCase& lc, const std::string& prefix, const std::function<double()>& loss,
                 const std::vector<float>& grad, const std::vector<float>& dx,
                 const std::function<bool()>& same_routing) {
  const float eps = 1e-2f;
  std::mt19937 rng(3);
  int checked = 0;
  auto one = [&](float& v, double an, const std::string& what) {
    const float orig = v;
    v = orig + eps;
    const double up = loss();
    const bool r1 = same_routing();
    v = orig - eps;
    const double dn = loss();
    const bool r2 = same_routing();
    v = orig;
    if (!r1 || !r2) return;
    const double fd = (up - dn) / (2 * eps);
    ++checked;
    EXPECT_LE(std::fabs(fd - an), 2e-3 + 3e-2 * std::fabs(an)) << what << ": analytic " << an << " vs fd " << fd;
  };
  for (const ParamInfo& info : lc.p.infos()) {
    if (!info.trainable || info.name.rfind(prefix, 0) != 0) continue;
    for (int r = 0; r < 6; ++r) {
      const size_t i = info.offset + size_t(rng() % uint64_t(info.numel));
      one(lc.p.data()[i], grad[i], info.name);
    }
  }
  for (int r = 0; r < 20; ++r) {
    const size_t i = rng() % lc.x.size();
    one(lc.x[i], dx[i], "input");
  }
  EXPECT_GT(checked, 30);
}

}  // namespace

TEST(GradCheck, MlaLayer) {
  LayerCase lc;
  const model::RopeTables rope(lc.cfg, lc.pos);
  model::ForwardOptions fo;
  fo.attention = model::ForwardOptions::Attention::Naive;
  auto run = [&](model::MlaTape* tape) {
    model::ModelWeights w = lc.p.weights();
    std::vector<float> y(lc.x.size());
    model::mla_forward(lc.cfg, w.layers[0].attn, 0, lc.x.data(), lc.batch, rope, nullptr, fo, y.data(), tape);
    return lc.dot(y);
  };
  model::MlaTape tape;
  run(&tape);
  std::vector<float> grad(lc.p.size(), 0.f), dx(lc.x.size());
  model::ModelGrads g = lc.p.grads(grad.data());
  model::ModelWeights w = lc.p.weights();
  model::mla_backward(lc.cfg, w.layers[0].attn, lc.x.data(), lc.batch, rope, tape, lc.R.data(), dx.data(), g.layers[0].attn);
  check_layer(lc, "model.layers.0.self_attn.", [&] { return run(nullptr); }, grad, dx, [] { return true; });
}

TEST(GradCheck, DenseAndMoeBlocks) {
  for (int64_t layer : {0, 1}) {  // layer 0 dense SwiGLU, layer 1 MoE (shared + routed)
    LayerCase lc;
    const model::RopeTables rope(lc.cfg, lc.pos);
      model::ForwardOptions fo;
    fo.attention = model::ForwardOptions::Attention::Naive;
    model::Routing base_routing, routing;
    auto run = [&](model::BlockTape* tape, model::Routing* r) {
      model::ModelWeights w = lc.p.weights();
      std::vector<float> h = lc.x;
      model::block_forward(lc.cfg, w.layers[size_t(layer)], layer, h.data(), lc.batch, rope, nullptr, fo, r, tape);
      return lc.dot(h);
    };
    model::BlockTape tape;
    run(&tape, &base_routing);
    std::vector<float> grad(lc.p.size(), 0.f), dh = lc.R;
    model::ModelGrads g = lc.p.grads(grad.data());
    model::ModelWeights w = lc.p.weights();
    model::block_backward(lc.cfg, w.layers[size_t(layer)], lc.batch, rope, tape, dh.data(), g.layers[size_t(layer)]);
    check_layer(lc, "model.layers." + std::to_string(layer) + ".", [&] { return run(nullptr, &routing); },
                grad, dh, [&] { return routing.experts == base_routing.experts; });
  }
}

// ---- the objectives post-training uses: packed, weighted sequences; a token objective (GRPO);
// a hidden-state objective (reward model) ----
namespace {

// Sequences of the given lengths (n + 1 tokens each), random tokens.
model::TokenBatch packed_batch(const model::ModelConfig& c, std::vector<int64_t> lengths, uint32_t seed) {
  std::mt19937 rng(seed);
  model::TokenBatch b;
  for (int64_t n : lengths)
    for (int64_t i = 0; i <= n; ++i) b.tokens.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  b.lengths = std::move(lengths);
  return b;
}

}  // namespace

TEST(GradCheck, PackedWeightedSequencesWithMtp) {
  const model::ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 21);
  // Three samples of different lengths, one too short for the MTP module (it sits out there);
  // a mask with zeros inside and at sample ends.
  model::TokenBatch b = packed_batch(c, {5, 1, 7}, 22);
  b.weights = {0, 0, 1, 1, 1, /**/ 1, /**/ 0, 1, 1, 0, 1, 1, 0};
  model::ObjectiveOptions o;
  o.mtp_lambda = 0.3;
  CheckStats st = check_model(p, b, o, 4);
  EXPECT_GT(st.checked, 150);
  EXPECT_EQ(st.failed, 0);
}

TEST(GradCheck, TokenObjective) {
  const model::ModelConfig c = test::tiny_v2();
  Params p = Params::init(c, 0.3, 23);
  model::TokenBatch b = packed_batch(c, {4, 6}, 24);
  // A term nonlinear in logp, so a wrong dlogp shows: Σ a_r·logp_r + 0.1·logp_r².
  model::ObjectiveOptions o;
  o.token_objective = [](int64_t row, double logp, std::span<const float>, double& dlogp) {
    const double a = row % 3 == 0 ? 0.0 : (row % 2 ? -0.5 : 0.3);
    dlogp = a + 0.2 * logp;
    return a * logp + 0.1 * logp * logp;
  };
  CheckStats st = check_model(p, b, o, 4);
  EXPECT_GT(st.checked, 100);
  EXPECT_EQ(st.failed, 0);
}

TEST(GradCheck, HiddenObjective) {
  const model::ModelConfig c = test::tiny_v3();
  Params p = Params::init(c, 0.3, 25);
  model::TokenBatch b = packed_batch(c, {4, 6}, 26);
  // A scalar read at each sequence's last position, squared (a reward-model-like head).
  std::vector<float> v(size_t(c.hidden_size));
  for (size_t j = 0; j < v.size(); ++j) v[j] = float(j % 5) * 0.2f - 0.4f;
  const std::vector<int64_t> last = {3, 4 + 5};
  model::ObjectiveOptions o;
  o.hidden_objective = [&](const float* xn, int64_t, int64_t H, float* dxn) {
    double loss = 0;
    for (int64_t t : last) {
      double s = 0;
      for (int64_t j = 0; j < H; ++j) s += double(v[size_t(j)]) * xn[t * H + j];
      loss += s * s;
      if (dxn)
        for (int64_t j = 0; j < H; ++j) dxn[t * H + j] = float(2 * s * v[size_t(j)]);
    }
    return loss;
  };
  CheckStats st = check_model(p, b, o, 4);
  EXPECT_GT(st.checked, 100);
  EXPECT_EQ(st.failed, 0);
}
