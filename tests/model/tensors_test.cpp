// The one tensor list (model/tensors.h): the same tensors, names and shapes as checkpoints written
// by the Hugging Face reference (the fixtures), the roles and indices later work queries, both
// orders, and the slots the walk hands out.
#include "model/tensors.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/safetensors.h"

namespace seek::model {
namespace {

const std::string kModels = SEEK_FIXTURES "/models/";

std::map<std::string, std::vector<int64_t>> by_name(const std::vector<TensorSpec>& specs) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const TensorSpec& t : specs) EXPECT_TRUE(m.emplace(t.name, t.shape).second) << t.name;
  return m;
}

int count(const std::vector<TensorSpec>& specs, TensorRole role) {
  int n = 0;
  for (const TensorSpec& t : specs) n += t.role == role;
  return n;
}

const TensorSpec& get(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& t : specs)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

// The list is exactly the tensors (names, shapes) of the fixtures, written by the HF reference.
TEST(ModelTensors, SameAsTheReferenceCheckpoints) {
  for (const char* fixture : {"v2-lite-tiny", "v3-tiny", "v3-tiny-fp8"}) {
    const ModelConfig c = ModelConfig::load(kModels + fixture);
    TensorStore store = TensorStore::open(kModels + fixture);
    std::map<std::string, std::vector<int64_t>> want;
    for (const Tensor& t : store.tensors())
      if (!t.name.ends_with("_scale_inv")) want[t.name] = t.shape;
    EXPECT_EQ(by_name(model_tensors(c)), want) << fixture;
    // FP8: exactly the tensors the list marks fp8 carry a scale.
    for (const TensorSpec& t : model_tensors(c))
      EXPECT_EQ(store.find(t.name + "_scale_inv") != nullptr, t.fp8 && c.quantization_config)
          << fixture << " " << t.name;
  }
}

// V2-Lite geometry: direct q_proj, softmax/greedy router without bias, no MTP.
TEST(ModelTensors, V2LiteCountsAndNames) {
  const ModelConfig c = ModelConfig::load(kModels + "v2-lite-tiny");
  ASSERT_EQ(c.q_lora_rank, 0);
  const auto specs = model_tensors(c);
  // embed, norm, lm_head + 1 dense layer (2 norms, q_proj, kv_a, kv_a_layernorm, kv_b, o, 3 FFN)
  // + 2 MoE layers (7 + router + 16 experts × 3 + shared 3).
  EXPECT_EQ(specs.size(), 3u + 10u + 2u * (7u + 1u + 16u * 3u + 3u));
  EXPECT_EQ(count(specs, TensorRole::RouterBias), 0);
  EXPECT_EQ(count(specs, TensorRole::Router), 2);
  EXPECT_EQ(count(specs, TensorRole::Head), 1);
  const TensorSpec& q = get(specs, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape,
            (std::vector<int64_t>{c.num_attention_heads * c.qk_head_dim(), c.hidden_size}));
  EXPECT_EQ(q.layer, 1);
  EXPECT_TRUE(q.fp8);
  for (const TensorSpec& t : specs) {
    EXPECT_EQ(t.name.find("q_a_proj"), std::string::npos);
    EXPECT_FALSE(t.mtp);
    EXPECT_TRUE(t.tied_to.empty());
  }
}

// V3 geometry: q LoRA, noaux_tc router bias, one MTP module with its copies of embed/head.
TEST(ModelTensors, V3QLoraNoauxMtp) {
  const ModelConfig c = ModelConfig::load(kModels + "v3-tiny");
  const auto specs = model_tensors(c);
  const int64_t L = c.num_hidden_layers, E = c.n_routed_experts;
  // Every MoE block (2 main + the MTP block) has a router and its bias.
  EXPECT_EQ(count(specs, TensorRole::Router), 3);
  EXPECT_EQ(count(specs, TensorRole::RouterBias), 3);
  const TensorSpec& bias = get(specs, "model.layers.3.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(bias.shape, std::vector<int64_t>{E});
  EXPECT_FALSE(bias.trainable());
  EXPECT_FALSE(bias.decay());
  EXPECT_TRUE(bias.mtp);
  EXPECT_EQ(get(specs, "model.layers.0.self_attn.q_a_layernorm.weight").role, TensorRole::Norm);
  EXPECT_FALSE(get(specs, "model.layers.0.self_attn.q_a_layernorm.weight").decay());
  EXPECT_EQ(get(specs, "model.layers.2.self_attn.q_b_proj.weight").fan_in(), c.q_lora_rank);

  // Experts are queryable by layer and index (a rank loads its own).
  int experts_of_layer_2 = 0;
  for (const TensorSpec& t : specs)
    if (t.layer == 2 && t.expert == 5) {
      ++experts_of_layer_2;
      EXPECT_NE(t.name.find("mlp.experts.5."), std::string::npos) << t.name;
    }
  EXPECT_EQ(experts_of_layer_2, 3);
  const TensorSpec& down = get(specs, "model.layers.1.mlp.experts.15.down_proj.weight");
  EXPECT_EQ(down.expert, 15);
  EXPECT_TRUE(down.residual_out);
  EXPECT_EQ(get(specs, "model.layers.1.mlp.shared_experts.up_proj.weight").expert, -1);

  // MTP module L: its copies are tied to the main tensors; the rest is its own.
  const std::string p = "model.layers." + std::to_string(L) + ".";
  EXPECT_EQ(get(specs, p + "embed_tokens.weight").tied_to, "model.embed_tokens.weight");
  EXPECT_EQ(get(specs, p + "shared_head.head.weight").tied_to, "lm_head.weight");
  EXPECT_EQ(get(specs, p + "eh_proj.weight").shape,
            (std::vector<int64_t>{c.hidden_size, 2 * c.hidden_size}));
  EXPECT_FALSE(get(specs, p + "eh_proj.weight").fp8);  // BF16 even in the FP8 release
  EXPECT_FALSE(get(specs, "model.layers.1.mlp.gate.weight").fp8);
  int tied = 0, mtp = 0;
  for (const TensorSpec& t : specs) {
    tied += !t.tied_to.empty();
    mtp += t.mtp;
    EXPECT_EQ(t.mtp, t.layer == L) << t.name;
  }
  EXPECT_EQ(tied, 2);
  // embed/head copies, enorm, hnorm, eh_proj, shared_head.norm; the block's 2 norms and 7 MLA
  // tensors; router, bias, experts, fused shared experts.
  EXPECT_EQ(mtp, 6 + 2 + 7 + 2 + E * 3 + 3);
}

TEST(ModelTensors, TiedEmbeddingsHaveNoHead) {
  ModelConfig c = ModelConfig::load(kModels + "v3-tiny");
  c.tie_word_embeddings = true;
  const auto specs = model_tensors(c);
  EXPECT_EQ(by_name(specs).count("lm_head.weight"), 0u);
  EXPECT_EQ(count(specs, TensorRole::Head), 1);  // the MTP module's copy
  EXPECT_EQ(get(specs, "model.layers.3.shared_head.head.weight").tied_to,
            "model.embed_tokens.weight");
  EXPECT_EQ(specs.size(), model_tensors(ModelConfig::load(kModels + "v3-tiny")).size() - 1);
}

// Training order (Params, training_state.bin) is a permutation of the release order, pinned.
TEST(ModelTensors, TrainingOrder) {
  const ModelConfig c = ModelConfig::load(kModels + "v3-tiny");
  const auto rel = model_tensors(c, TensorOrder::Release);
  const auto tr = model_tensors(c, TensorOrder::Training);
  EXPECT_EQ(by_name(rel), by_name(tr));
  auto pos = [&](const std::vector<TensorSpec>& s, const std::string& n) {
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i].name == n) return i;
    return s.size();
  };
  const std::string l0 = "model.layers.0.", m = "model.layers.3.";
  EXPECT_EQ(pos(tr, l0 + "post_attention_layernorm.weight"), 2u);
  EXPECT_EQ(pos(rel, l0 + "post_attention_layernorm.weight"),
            pos(rel, l0 + "self_attn.o_proj.weight") + 1);
  EXPECT_EQ(pos(tr, m + "shared_head.norm.weight"), pos(tr, m + "eh_proj.weight") + 1);
  EXPECT_EQ(pos(tr, m + "input_layernorm.weight"), pos(tr, m + "shared_head.norm.weight") + 1);
  EXPECT_EQ(pos(tr, m + "embed_tokens.weight"), tr.size() - 2);
  EXPECT_EQ(pos(tr, m + "shared_head.head.weight"), tr.size() - 1);
  EXPECT_EQ(pos(rel, m + "embed_tokens.weight"), pos(rel, m + "enorm.weight") - 1);
  EXPECT_EQ(pos(rel, m + "shared_head.head.weight"), rel.size() - 1);
}

// The walk hands every tensor a slot in ModelWeights, and every trainable non-copy one a
// gradient slot; shared views point at the main tensors.
TEST(ModelTensors, WalkSlots) {
  const ModelConfig c = ModelConfig::load(kModels + "v3-tiny");
  ModelWeights w;
  ModelGrads g;
  std::set<const void*> slots;
  float fake = 0;
  for_each_tensor(c, TensorOrder::Training, &w, &g, [&](const TensorSpec& t, const TensorSlots& s) {
    EXPECT_NE(s.view != nullptr, s.vec != nullptr) << t.name;
    EXPECT_EQ(s.view != nullptr, t.shape.size() == 2) << t.name;
    EXPECT_EQ(s.grad != nullptr, t.trainable() && t.tied_to.empty()) << t.name;
    EXPECT_TRUE(slots.insert(s.view ? static_cast<const void*>(s.view) : s.vec).second) << t.name;
    if (t.tied_to.empty() && s.view) s.view->data = &fake;
    if (s.grad) *s.grad = &fake;
  });
  EXPECT_EQ(w.layers.size(), 3u);
  EXPECT_FALSE(w.layers[0].is_moe);
  EXPECT_TRUE(w.layers[1].is_moe);
  EXPECT_EQ(w.layers[1].moe.experts.size(), 16u);
  EXPECT_EQ(g.layers[2].moe.experts.size(), 16u);
  ASSERT_EQ(w.mtp.size(), 1u);
  EXPECT_TRUE(w.mtp[0].block.is_moe);
  EXPECT_EQ(w.mtp[0].embed_tokens.data, w.embed_tokens.data);
  EXPECT_EQ(w.mtp[0].shared_head_head.data, w.lm_head.data);
  EXPECT_EQ(g.mtp[0].block.moe.experts[15].down_proj, &fake);
}

// ---------------------------------------------------------------------------------------------
// scoring_func / topk_method: parsed once, HF spellings written back.

nlohmann::json v3_json() { return ModelConfig::load(kModels + "v3-tiny").to_json(); }

std::string config_error(const nlohmann::json& j) {
  try {
    ModelConfig::from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigEnums, ParsedAndWrittenBack) {
  const ModelConfig c = ModelConfig::load(kModels + "v3-tiny");
  EXPECT_EQ(c.scoring_func, ScoringFunc::Sigmoid);
  EXPECT_EQ(c.topk_method, TopkMethod::NoauxTc);
  EXPECT_EQ(c.to_json()["scoring_func"], "sigmoid");
  EXPECT_EQ(c.to_json()["topk_method"], "noaux_tc");
  const ModelConfig v2 = ModelConfig::load(kModels + "v2-lite-tiny");
  EXPECT_EQ(v2.scoring_func, ScoringFunc::Softmax);
  EXPECT_EQ(v2.topk_method, TopkMethod::Greedy);
  EXPECT_EQ(v2.to_json()["topk_method"], "greedy");

  nlohmann::json j = v3_json();
  j["topk_method"] = "group_limited_greedy";
  EXPECT_EQ(ModelConfig::from_json(j, "x").topk_method, TopkMethod::GroupLimitedGreedy);
  j["topk_method"] = "gready";  // the misspelling in some V2 code copies
  EXPECT_EQ(ModelConfig::from_json(j, "x").topk_method, TopkMethod::Greedy);
  EXPECT_EQ(ModelConfig::from_json(j, "x").to_json()["topk_method"], "greedy");
  j.erase("scoring_func");
  j.erase("topk_method");
  EXPECT_EQ(ModelConfig::from_json(j, "x").scoring_func, ScoringFunc::Softmax);
  EXPECT_EQ(ModelConfig::from_json(j, "x").topk_method, TopkMethod::Greedy);
}

TEST(ConfigEnums, UnknownValuesNameTheFieldAndTheChoices) {
  nlohmann::json j = v3_json();
  j["scoring_func"] = "tanh";
  EXPECT_EQ(config_error(j), "cfg.json: unsupported scoring_func \"tanh\" (softmax or sigmoid)");
  j = v3_json();
  j["topk_method"] = "top_p";
  EXPECT_EQ(config_error(j), "cfg.json: unsupported topk_method \"top_p\" (greedy, "
                             "group_limited_greedy or noaux_tc)");
  j = v3_json();
  j["topk_method"] = 3;
  EXPECT_NE(config_error(j).find("topk_method"), std::string::npos) << config_error(j);
}

}  // namespace
}  // namespace seek::model
