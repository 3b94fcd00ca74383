// Tiny model geometries for the gradient checks and the training tests: every component switched
// on (q LoRA, YaRN, dense + MoE layers, noaux_tc grouped routing with shared experts, MTP) or the
// V2-Lite variant (q_proj, softmax scores, group_limited_greedy, no MTP). Header-only, so
// tests/model (linked with seek_model alone) and tests/train share them.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"

namespace seek::model::test {

inline model::ModelConfig tiny_v3(int64_t vocab = 40) {
  model::ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = vocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.moe_intermediate_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.q_lora_rank = 10;
  c.kv_lora_rank = 12;
  c.qk_nope_head_dim = 8;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 6;
  c.n_routed_experts = 4;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 2;
  c.first_k_dense_replace = 1;
  c.scoring_func = model::ScoringFunc::Sigmoid;
  c.topk_method = model::TopkMethod::NoauxTc;
  c.n_group = 2;
  c.topk_group = 1;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  model::RopeScaling y;
  y.type = "yarn";
  y.factor = 4.0;
  y.original_max_position_embeddings = 16;
  y.mscale = 1.0;
  y.mscale_all_dim = 1.0;
  c.rope_scaling = y;
  c.max_position_embeddings = 64;
  c.num_nextn_predict_layers = 1;
  c.eos_token_ids = {1};
  return c;
}

inline model::ModelConfig tiny_v2(int64_t vocab = 40) {
  model::ModelConfig c = tiny_v3(vocab);
  c.model_type = "deepseek_v2";
  c.q_lora_rank = 0;
  c.scoring_func = model::ScoringFunc::Softmax;
  c.topk_method = model::TopkMethod::GroupLimitedGreedy;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  c.rope_scaling.reset();
  c.num_nextn_predict_layers = 0;
  return c;
}

// The "model" section of a training config file (HF config.json fields) for the trainer and
// CLI tests: a tiny DeepSeek-V3 (MLA with q/kv LoRA, a dense layer then MoE with 4 routed + 1
// shared expert, noaux_tc grouped routing, one MTP module). `vocab` 0: the tokenizer gives it.
inline std::string tiny_v3_model_json(int64_t max_positions, int64_t vocab = 0) {
  return std::string("{") + (vocab > 0 ? "\"vocab_size\": " + std::to_string(vocab) + ", " : "") +
         R"("hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
            "num_hidden_layers": 2, "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16,
            "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
            "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
            "first_k_dense_replace": 1, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
            "n_group": 2, "topk_group": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
            "max_position_embeddings": )" + std::to_string(max_positions) +
         R"(, "num_nextn_predict_layers": 1})";
}

}  // namespace seek::model::test
