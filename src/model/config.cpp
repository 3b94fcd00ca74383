#include "model/config.h"

#include <cmath>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"

namespace seek::model {

bool ModelConfig::yarn_active() const {
  return rope_scaling && rope_scaling->type == "yarn" && rope_scaling->factor > 1.0;
}

// YaRN's attention temperature: m = 0.1 · mscale · ln(s) + 1 (1 when s <= 1).
static double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(double(qk_head_dim()));
  if (yarn_active() && rope_scaling->mscale_all_dim != 0.0) {
    // The softmax scale is multiplied by m², not m: official model.py and HF both square it.
    double m = yarn_mscale(rope_scaling->factor, rope_scaling->mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

double ModelConfig::rope_mscale() const {
  // HF multiplies cos/sin by m(mscale)/m(mscale_all_dim); 1 in every released config.
  if (!yarn_active()) return 1.0;
  return yarn_mscale(rope_scaling->factor, rope_scaling->mscale) /
         yarn_mscale(rope_scaling->factor, rope_scaling->mscale_all_dim);
}

std::vector<float> ModelConfig::rope_freqs() const {
  const int64_t d = qk_rope_head_dim;
  std::vector<float> freqs(size_t(d / 2));
  // float32 like model.py: 1 / theta^(2i/d).
  for (int64_t i = 0; i < d / 2; ++i)
    freqs[size_t(i)] = 1.0f / std::pow(float(rope_theta), float(2 * i) / float(d));
  if (!yarn_active()) return freqs;
  const RopeScaling& y = *rope_scaling;
  // Dimension index whose wavelength completes `rot` rotations over the original context.
  auto corr_dim = [&](double rot) {
    return double(d) * std::log(double(y.original_max_position_embeddings) / (rot * 2.0 * M_PI)) /
           (2.0 * std::log(rope_theta));
  };
  double low = std::max(std::floor(corr_dim(y.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr_dim(y.beta_slow)), double(d - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < d / 2; ++i) {
    // ramp 0: high-frequency pairs keep their frequency; ramp 1: interpolated (divided by s).
    float ramp = float(std::clamp((double(i) - low) / (high - low), 0.0, 1.0));
    float f = freqs[size_t(i)];
    freqs[size_t(i)] = f / float(y.factor) * ramp + f * (1.0f - ramp);
  }
  return freqs;
}

const char* hf_name(ScoringFunc f) { return f == ScoringFunc::Sigmoid ? "sigmoid" : "softmax"; }

const char* hf_name(TopkMethod m) {
  switch (m) {
    case TopkMethod::GroupLimitedGreedy: return "group_limited_greedy";
    case TopkMethod::NoauxTc: return "noaux_tc";
    case TopkMethod::Greedy: break;
  }
  return "greedy";
}

ScoringFunc parse_scoring_func(const std::string& s, const std::string& src) {
  if (s == "softmax") return ScoringFunc::Softmax;
  if (s == "sigmoid") return ScoringFunc::Sigmoid;
  fail("{}: unsupported scoring_func \"{}\" (softmax or sigmoid)", src, s);
}

TopkMethod parse_topk_method(const std::string& s, const std::string& src) {
  if (s == "greedy" || s == "gready") return TopkMethod::Greedy;  // "gready": some V2 code copies
  if (s == "group_limited_greedy") return TopkMethod::GroupLimitedGreedy;
  if (s == "noaux_tc") return TopkMethod::NoauxTc;
  fail("{}: unsupported topk_method \"{}\" (greedy, group_limited_greedy or noaux_tc)", src, s);
}

namespace {

// A numeric config.json field under its HF name; `fallback` is an optional field's default
// (what from_json takes when the field is missing or null), none for a required field.
template <class T>
struct Field {
  const char* name;
  T ModelConfig::*member;
  std::optional<T> fallback;
};

// The fields from_json and to_json both handle one to one, in from_json's reading order.
// q_lora_rank (null when 0) and num_nextn_predict_layers (only V3 writes it) are read here and
// written by to_json itself.
const Field<int64_t> kIntFields[] = {
    {"vocab_size", &ModelConfig::vocab_size, {}},
    {"hidden_size", &ModelConfig::hidden_size, {}},
    {"intermediate_size", &ModelConfig::intermediate_size, {}},
    {"num_hidden_layers", &ModelConfig::num_hidden_layers, {}},
    {"num_attention_heads", &ModelConfig::num_attention_heads, {}},
    {"q_lora_rank", &ModelConfig::q_lora_rank, 0},
    {"kv_lora_rank", &ModelConfig::kv_lora_rank, {}},
    {"qk_nope_head_dim", &ModelConfig::qk_nope_head_dim, {}},
    {"qk_rope_head_dim", &ModelConfig::qk_rope_head_dim, {}},
    {"v_head_dim", &ModelConfig::v_head_dim, {}},
    {"n_routed_experts", &ModelConfig::n_routed_experts, 0},
    {"n_shared_experts", &ModelConfig::n_shared_experts, 0},
    {"num_experts_per_tok", &ModelConfig::num_experts_per_tok, 0},
    {"moe_intermediate_size", &ModelConfig::moe_intermediate_size, 0},
    {"first_k_dense_replace", &ModelConfig::first_k_dense_replace, 0},
    {"moe_layer_freq", &ModelConfig::moe_layer_freq, 1},
    {"n_group", &ModelConfig::n_group, 1},
    {"topk_group", &ModelConfig::topk_group, 1},
    {"max_position_embeddings", &ModelConfig::max_position_embeddings, 4096},
    {"bos_token_id", &ModelConfig::bos_token_id, 0},
    {"num_nextn_predict_layers", &ModelConfig::num_nextn_predict_layers, 0},
};
const Field<double> kRealFields[] = {
    {"routed_scaling_factor", &ModelConfig::routed_scaling_factor, 1.0},
    {"rope_theta", &ModelConfig::rope_theta, 10000.0},
    {"rms_norm_eps", &ModelConfig::rms_norm_eps, 1e-6},
};
const Field<bool> kFlagFields[] = {
    {"norm_topk_prob", &ModelConfig::norm_topk_prob, false},
    {"tie_word_embeddings", &ModelConfig::tie_word_embeddings, false},
};

template <class T, size_t N>
void read_fields(const Field<T> (&fields)[N], const nlohmann::json& j, const std::string& src,
                 ModelConfig& c) {
  for (const Field<T>& f : fields)
    c.*f.member = f.fallback ? json_get_or<T>(j, f.name, *f.fallback, src)
                             : json_get<T>(j, f.name, src);
}

template <class T, size_t N>
void write_fields(const Field<T> (&fields)[N], const ModelConfig& c, nlohmann::json& j) {
  for (const Field<T>& f : fields) j[f.name] = c.*f.member;
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) fail("{}: config must be a JSON object", src);
  ModelConfig c;
  c.model_type = json_get<std::string>(j, "model_type", src);
  if (c.model_type != "deepseek_v2" && c.model_type != "deepseek_v3")
    fail("{}: unsupported model_type \"{}\" (expected deepseek_v2 or deepseek_v3)", src,
         c.model_type);
  read_fields(kIntFields, j, src, c);
  read_fields(kRealFields, j, src, c);
  read_fields(kFlagFields, j, src, c);
  c.scoring_func =
      parse_scoring_func(json_get_or<std::string>(j, "scoring_func", "softmax", src), src);
  c.topk_method = parse_topk_method(json_get_or<std::string>(j, "topk_method", "greedy", src), src);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& e = j["eos_token_id"];
    if (e.is_array()) {
      for (const auto& v : e) {
        if (!v.is_number_integer()) fail("{}: field \"eos_token_id\" must hold integers", src);
        c.eos_token_ids.push_back(v.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(json_get<int64_t>(j, "eos_token_id", src));
    }
  }
  c.torch_dtype = json_get_or<std::string>(j, "torch_dtype", "bfloat16", src);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& r = j["rope_scaling"];
    const std::string rs = src + ": rope_scaling";
    if (!r.is_object()) fail("{} must be an object or null", rs);
    RopeScaling y;
    y.type = r.contains("type") ? json_get<std::string>(r, "type", rs)
                                : json_get<std::string>(r, "rope_type", rs);
    if (y.type != "yarn") fail("{}: unsupported type \"{}\" (DeepSeek uses yarn)", rs, y.type);
    y.factor = json_get<double>(r, "factor", rs);
    y.original_max_position_embeddings =
        json_get<int64_t>(r, "original_max_position_embeddings", rs);
    y.beta_fast = json_get_or<double>(r, "beta_fast", 32.0, rs);
    y.beta_slow = json_get_or<double>(r, "beta_slow", 1.0, rs);
    y.mscale = json_get_or<double>(r, "mscale", 1.0, rs);
    y.mscale_all_dim = json_get_or<double>(r, "mscale_all_dim", 0.0, rs);
    c.rope_scaling = y;
  }
  if (j.contains("quantization_config") && !j["quantization_config"].is_null()) {
    const auto& q = j["quantization_config"];
    const std::string qs = src + ": quantization_config";
    QuantizationConfig qc;
    qc.quant_method = json_get<std::string>(q, "quant_method", qs);
    if (qc.quant_method != "fp8") fail("{}: unsupported quant_method \"{}\"", qs, qc.quant_method);
    qc.fmt = json_get_or<std::string>(q, "fmt", "e4m3", qs);
    if (qc.fmt != "e4m3") fail("{}: unsupported fmt \"{}\" (expected e4m3)", qs, qc.fmt);
    qc.activation_scheme = json_get_or<std::string>(q, "activation_scheme", "dynamic", qs);
    if (q.contains("weight_block_size")) {
      const auto& b = q["weight_block_size"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer())
        fail("{}: weight_block_size must be [rows, cols]", qs);
      qc.block_rows = b[0].get<int64_t>();
      qc.block_cols = b[1].get<int64_t>();
    }
    c.quantization_config = qc;
  }
  c.validate(src);
  return c;
}

void ModelConfig::validate(const std::string& src) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail("{}: \"{}\" must be positive, got {}", src, name, v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(kv_lora_rank, "kv_lora_rank");
  positive(qk_nope_head_dim, "qk_nope_head_dim");
  positive(qk_rope_head_dim, "qk_rope_head_dim");
  positive(v_head_dim, "v_head_dim");
  positive(max_position_embeddings, "max_position_embeddings");
  if (q_lora_rank < 0) fail("{}: \"q_lora_rank\" must be null or non-negative", src);
  if (qk_rope_head_dim % 2) fail("{}: \"qk_rope_head_dim\" must be even (RoPE rotates pairs)", src);
  if (rms_norm_eps <= 0) fail("{}: \"rms_norm_eps\" must be positive", src);
  if (rope_theta <= 1) fail("{}: \"rope_theta\" must be > 1", src);
  if (first_k_dense_replace < 0) fail("{}: \"first_k_dense_replace\" must be >= 0", src);
  if (num_nextn_predict_layers < 0) fail("{}: \"num_nextn_predict_layers\" must be >= 0", src);
  bool any_dense = n_routed_experts == 0 || first_k_dense_replace > 0 || moe_layer_freq > 1;
  if (any_dense) positive(intermediate_size, "intermediate_size");
  if (n_routed_experts < 0) fail("{}: \"n_routed_experts\" must be >= 0", src);
  if (n_routed_experts > 0) {
    positive(moe_intermediate_size, "moe_intermediate_size");
    positive(num_experts_per_tok, "num_experts_per_tok");
    positive(moe_layer_freq, "moe_layer_freq");
    positive(n_group, "n_group");
    positive(topk_group, "topk_group");
    if (n_shared_experts < 0) fail("{}: \"n_shared_experts\" must be >= 0", src);
    if (num_experts_per_tok > n_routed_experts)
      fail("{}: num_experts_per_tok {} exceeds n_routed_experts {}", src, num_experts_per_tok,
           n_routed_experts);
    if (n_routed_experts % n_group)
      fail("{}: n_routed_experts {} is not divisible by n_group {}", src, n_routed_experts, n_group);
    if (topk_group > n_group)
      fail("{}: topk_group {} exceeds n_group {}", src, topk_group, n_group);
    if (topk_method != TopkMethod::Greedy &&
        num_experts_per_tok > topk_group * (n_routed_experts / n_group))
      fail("{}: num_experts_per_tok {} exceeds the experts in topk_group {} groups", src,
           num_experts_per_tok, topk_group);
    if (topk_method == TopkMethod::NoauxTc && n_routed_experts / n_group < 2)
      fail("{}: noaux_tc scores groups by their top-2 experts: need >= 2 experts per group", src);
  }
  if (rope_scaling) {
    if (rope_scaling->factor <= 0) fail("{}: rope_scaling.factor must be positive", src);
    if (rope_scaling->original_max_position_embeddings <= 0)
      fail("{}: rope_scaling.original_max_position_embeddings must be positive", src);
  }
  if (quantization_config &&
      (quantization_config->block_rows != 128 || quantization_config->block_cols != 128))
    fail("{}: quantization_config.weight_block_size [{}, {}] unsupported (expected [128, 128])",
         src, quantization_config->block_rows, quantization_config->block_cols);
  for (int64_t e : eos_token_ids)
    if (e < 0 || e >= vocab_size) fail("{}: eos_token_id {} outside the vocabulary", src, e);
}

ModelConfig ModelConfig::load(const std::string& model_dir) {
  std::string path = model_dir + "/config.json";
  return from_json(parse_json(read_file(path), path), path);
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j;
  j["architectures"] = {model_type == "deepseek_v3" ? "DeepseekV3ForCausalLM"
                                                     : "DeepseekV2ForCausalLM"};
  j["model_type"] = model_type;
  write_fields(kIntFields, *this, j);
  write_fields(kRealFields, *this, j);
  write_fields(kFlagFields, *this, j);
  j["num_key_value_heads"] = num_attention_heads;
  j["q_lora_rank"] = q_lora_rank > 0 ? nlohmann::json(q_lora_rank) : nlohmann::json(nullptr);
  if (num_nextn_predict_layers <= 0 && model_type != "deepseek_v3")
    j.erase("num_nextn_predict_layers");
  j["scoring_func"] = hf_name(scoring_func);
  j["topk_method"] = hf_name(topk_method);
  if (rope_scaling) {
    const auto& y = *rope_scaling;
    j["rope_scaling"] = {{"type", y.type}, {"factor", y.factor},
                         {"original_max_position_embeddings", y.original_max_position_embeddings},
                         {"beta_fast", y.beta_fast}, {"beta_slow", y.beta_slow},
                         {"mscale", y.mscale}, {"mscale_all_dim", y.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else j["eos_token_id"] = eos_token_ids;
  if (quantization_config) {
    const auto& q = *quantization_config;
    j["quantization_config"] = {{"quant_method", q.quant_method}, {"fmt", q.fmt},
                                {"activation_scheme", q.activation_scheme},
                                {"weight_block_size", {q.block_rows, q.block_cols}}};
  }
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype;
  j["attention_bias"] = false;
  return j;
}

}  // namespace seek::model
