// The model's hyper-parameters, with the Hugging Face config.json field names, validated in one
// place. Every field here changes the math (see docs in the fixture README and the spec).
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace seek::model {

struct RopeScaling {  // rope_scaling {type: "yarn", ...}
  std::string type;   // "yarn" (the only scaling DeepSeek uses)
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 1.0, mscale_all_dim = 0.0;
};

struct QuantizationConfig {  // quantization_config (the V3/R1 FP8 release)
  std::string quant_method;  // "fp8"
  std::string fmt;           // "e4m3"
  std::string activation_scheme;
  int64_t block_rows = 128, block_cols = 128;  // weight_block_size
};

// MoE routing, parsed once from config.json's strings (to_json writes the HF spellings back):
// scoring_func "softmax" | "sigmoid"; topk_method "greedy" (or "gready", a misspelling in some
// V2 code copies) | "group_limited_greedy" | "noaux_tc".
enum class ScoringFunc { Softmax, Sigmoid };
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };
const char* hf_name(ScoringFunc f);
const char* hf_name(TopkMethod m);
// Throw seek::Error naming `source` and the field for an unknown spelling.
ScoringFunc parse_scoring_func(const std::string& s, const std::string& source);
TopkMethod parse_topk_method(const std::string& s, const std::string& source);

struct ModelConfig {
  std::string model_type;  // deepseek_v2 | deepseek_v3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense FFN
  int64_t moe_intermediate_size = 0;  // one routed expert
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  // MLA
  int64_t q_lora_rank = 0;  // 0 when null (V2-Lite: direct q_proj)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  // MoE
  int64_t n_routed_experts = 0;  // 0: every layer dense
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  ScoringFunc scoring_func = ScoringFunc::Softmax;
  TopkMethod topk_method = TopkMethod::Greedy;  // NoauxTc: the router has e_score_correction_bias
  int64_t n_group = 1, topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  // Positions and norms
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 0;
  std::vector<int64_t> eos_token_ids;
  int64_t num_nextn_predict_layers = 0;  // MTP modules stored as layers num_hidden_layers + k
  std::optional<QuantizationConfig> quantization_config;
  std::string torch_dtype = "bfloat16";

  // Derived
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace &&
           layer % moe_layer_freq == 0;
  }
  bool yarn_active() const;            // rope_scaling yarn with factor > 1 (HF semantics)
  double softmax_scale() const;        // (d_h + d_R)^-0.5 · mscale² under YaRN
  double rope_mscale() const;          // HF cos/sin factor m(mscale)/m(mscale_all_dim)
  std::vector<float> rope_freqs() const;  // effective freq[i], i < d_R/2, after YaRN (float32)
  // KV cache: compressed latent + shared rope key per token per layer (values, not bytes).
  int64_t kv_values_per_token_per_layer() const { return kv_lora_rank + qk_rope_head_dim; }
  int64_t mha_kv_values_per_token_per_layer() const {
    return num_attention_heads * (qk_head_dim() + v_head_dim);
  }

  // Throws seek::Error naming `source` and the field on missing/invalid fields or geometry
  // that does not divide.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::string& model_dir);  // MODEL_DIR/config.json
  nlohmann::json to_json() const;                          // HF config.json
  void validate(const std::string& source) const;
};

}  // namespace seek::model
