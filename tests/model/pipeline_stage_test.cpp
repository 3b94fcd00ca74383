// Pipeline stages without MPI: the model cut into stages (StagePass), each stage's output handed
// to the next by hand, gradients back the same way, gives forward_backward's loss and gradients
// bit for bit; a split backward (weight-gradient products queued, model/weight_grad.h) too, once
// the queue runs. The multi-process runtime under mpirun is tests/cli/distributed_test.cpp.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "core/error.h"
#include "model/params.h"
#include "model/transformer.h"
#include "model/weight_grad.h"
#include "test_configs.h"

using namespace seek;
using namespace seek::model;

namespace {

TokenBatch random_rows(const ModelConfig& c, int64_t B, int64_t S, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t;
  for (int64_t i = 0; i < B * (S + 1); ++i) t.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  return TokenBatch::rows(B, S, std::move(t));
}

struct Staged {
  std::vector<float> grad;
  double loss = 0.0, ce = 0.0, balance = 0.0;
  std::vector<double> ce_mtp;
  std::vector<int64_t> moe_layers;
  std::vector<std::vector<int64_t>> loads;
  size_t queued_bytes = 0;  // weight-gradient operands a split backward held
  bool weights_zero_before_w = true;
};

// The batch through stages cut at `cuts` (layer boundaries), forward stage by stage, backward in
// reverse; `split`: each stage's backward queues its weight gradients, run after all backwards.
Staged run_stages(const Params& p, const TokenBatch& b, const ObjectiveOptions& o,
                  const std::vector<int64_t>& cuts, bool split) {
  const ModelConfig& c = p.config();
  std::vector<int64_t> edges = {0};
  edges.insert(edges.end(), cuts.begin(), cuts.end());
  edges.push_back(c.num_hidden_layers);
  Staged out;
  out.grad.assign(p.size(), 0.0f);
  ModelGrads g = p.grads(out.grad.data());
  std::vector<StagePass> stages;
  std::vector<float> h;
  for (size_t s = 0; s + 1 < edges.size(); ++s) {
    stages.emplace_back(c, p.weights(), b, o, edges[s], edges[s + 1]);
    const std::vector<float>& next = stages.back().forward(g, s == 0 ? nullptr : h.data());
    if (s + 2 < edges.size()) {
      EXPECT_EQ(int64_t(next.size()), stages.back().tokens() * c.hidden_size);
      h = next;
    } else {
      EXPECT_TRUE(next.empty());
    }
  }
  std::vector<WeightGradQueue> queues(stages.size());
  std::vector<float> dh;
  for (size_t s = stages.size(); s-- > 0;) {
    std::optional<DeferWeightGrads> defer;
    if (split) defer.emplace(queues[s]);
    const std::vector<float>& prev = stages[s].backward(g, s + 1 == stages.size() ? nullptr : dh.data());
    if (s > 0) dh = prev;
    else EXPECT_TRUE(prev.empty());
  }
  if (split) {
    // Before the W passes the attention projections of the first layer have no gradient yet.
    const float* q = g.layers[0].attn.kv_a_proj_with_mqa;
    for (int64_t i = 0; i < 8; ++i) out.weights_zero_before_w &= q[i] == 0.0f;
    for (auto& q : queues) out.queued_bytes += q.bytes();
    for (auto& q : queues) q.run();
    for (auto& q : queues) EXPECT_TRUE(q.empty());
  }
  out.ce_mtp.assign(size_t(c.num_nextn_predict_layers), 0.0);
  for (StagePass& st : stages) {
    const StepResult r = st.result();
    out.loss += r.loss;
    out.ce += r.ce;
    out.balance += r.balance;
    for (size_t k = 0; k < r.ce_mtp.size(); ++k) out.ce_mtp[k] += r.ce_mtp[k];
    out.moe_layers.insert(out.moe_layers.end(), r.moe_layers.begin(), r.moe_layers.end());
    out.loads.insert(out.loads.end(), r.expert_load.begin(), r.expert_load.end());
  }
  return out;
}

class PipelineStages : public ::testing::TestWithParam<bool> {};  // recompute

// A 4-layer V3 model (dense first layer, MoE after, MTP module, balance loss) cut into 2 and 4
// stages, and 2 stages with a split backward: every gradient, the loss terms and the experts'
// loads equal the single pass's exactly.
TEST_P(PipelineStages, EqualTheWholeModelBitForBit) {
  ModelConfig c = test::tiny_v3();
  c.num_hidden_layers = 4;
  const Params p = Params::init(c, 0.3, 7);
  const TokenBatch b = random_rows(c, 3, 10, 11);
  ObjectiveOptions o;
  o.balance_alpha = 0.01;
  o.recompute = GetParam();
  std::vector<float> whole(p.size(), 0.0f);
  ModelGrads gw = p.grads(whole.data());
  const StepResult ref = forward_backward(c, p.weights(), gw, b, o);
  for (const auto& [cuts, split] : {std::pair{std::vector<int64_t>{2}, false},
                                    {std::vector<int64_t>{1, 2, 3}, false},
                                    {std::vector<int64_t>{1}, true},
                                    {std::vector<int64_t>{3}, true}}) {
    const Staged s = run_stages(p, b, o, cuts, split);
    SCOPED_TRACE(testing::Message() << cuts.size() + 1 << " stages" << (split ? ", split" : ""));
    EXPECT_EQ(s.ce, ref.ce);
    EXPECT_EQ(s.ce_mtp, ref.ce_mtp);
    EXPECT_DOUBLE_EQ(s.balance, ref.balance);
    EXPECT_DOUBLE_EQ(s.loss, ref.loss);
    EXPECT_EQ(s.moe_layers, ref.moe_layers);
    EXPECT_EQ(s.loads, ref.expert_load);
    size_t differ = 0;
    for (size_t i = 0; i < whole.size(); ++i) differ += s.grad[i] != whole[i];
    EXPECT_EQ(differ, 0u) << "of " << whole.size() << " gradient values";
    if (split) {
      EXPECT_TRUE(s.weights_zero_before_w);
      EXPECT_GT(s.queued_bytes, 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(, PipelineStages, ::testing::Bool(),
                         [](const auto& i) { return i.param ? "Recompute" : "Tapes"; });

TEST(PipelineStage, BadRangesAndMissingInputsAreErrors) {
  const ModelConfig c = test::tiny_v3();
  const Params p = Params::init(c, 0.3, 7);
  const TokenBatch b = random_rows(c, 1, 6, 1);
  std::vector<float> grad(p.size(), 0.0f);
  ModelGrads g = p.grads(grad.data());
  EXPECT_THROW(StagePass(c, p.weights(), b, {}, 1, 3), Error);   // beyond 2 layers
  EXPECT_THROW(StagePass(c, p.weights(), b, {}, 2, 1), Error);
  EXPECT_THROW(StagePass(c, p.weights(), b, {}, 1, 1), Error);   // no layer
  StagePass second(c, p.weights(), b, {}, 1, 2);
  EXPECT_THROW(second.forward(g, nullptr), Error);               // no previous stage's output
  StagePass first(c, p.weights(), b, {}, 0, 1);
  first.forward(g, nullptr);
  EXPECT_THROW(first.backward(g, nullptr), Error);               // no next stage's gradient
}

}  // namespace
