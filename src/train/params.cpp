#include "train/params.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <unordered_map>

#include "core/error.h"
#include "core/safetensors.h"

namespace seek::train {

using model::ModelConfig;

namespace {

// The tensors of one decoder block (main layer or MTP block), in checkpoint order.
void block_tensors(const ModelConfig& c, int64_t l, bool moe,
                   std::vector<std::pair<std::string, std::vector<int64_t>>>& out) {
  const int64_t H = c.hidden_size, nh = c.num_attention_heads;
  const std::string p = "model.layers." + std::to_string(l);
  out.push_back({p + ".input_layernorm.weight", {H}});
  out.push_back({p + ".post_attention_layernorm.weight", {H}});
  const std::string a = p + ".self_attn";
  if (c.q_lora_rank > 0) {
    out.push_back({a + ".q_a_proj.weight", {c.q_lora_rank, H}});
    out.push_back({a + ".q_a_layernorm.weight", {c.q_lora_rank}});
    out.push_back({a + ".q_b_proj.weight", {nh * c.qk_head_dim(), c.q_lora_rank}});
  } else {
    out.push_back({a + ".q_proj.weight", {nh * c.qk_head_dim(), H}});
  }
  out.push_back({a + ".kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H}});
  out.push_back({a + ".kv_a_layernorm.weight", {c.kv_lora_rank}});
  out.push_back({a + ".kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}});
  out.push_back({a + ".o_proj.weight", {H, nh * c.v_head_dim}});
  const std::string m = p + ".mlp";
  auto ffn = [&](const std::string& q, int64_t inter) {
    out.push_back({q + ".gate_proj.weight", {inter, H}});
    out.push_back({q + ".up_proj.weight", {inter, H}});
    out.push_back({q + ".down_proj.weight", {H, inter}});
  };
  if (!moe) {
    ffn(m, c.intermediate_size);
    return;
  }
  out.push_back({m + ".gate.weight", {c.n_routed_experts, H}});
  if (c.topk_method == "noaux_tc") out.push_back({m + ".gate.e_score_correction_bias", {c.n_routed_experts}});
  for (int64_t e = 0; e < c.n_routed_experts; ++e) ffn(m + ".experts." + std::to_string(e), c.moe_intermediate_size);
  if (c.n_shared_experts > 0) ffn(m + ".shared_experts", c.n_shared_experts * c.moe_intermediate_size);
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

void Params::layout(const ModelConfig& cfg) {
  cfg_ = cfg;
  const int64_t H = cfg.hidden_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> t;
  t.push_back({"model.embed_tokens.weight", {cfg.vocab_size, H}});
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) block_tensors(cfg, l, cfg.is_moe_layer(l), t);
  t.push_back({"model.norm.weight", {H}});
  if (!cfg.tie_word_embeddings) t.push_back({"lm_head.weight", {cfg.vocab_size, H}});
  for (int64_t k = 0; k < cfg.num_nextn_predict_layers; ++k) {
    const int64_t l = cfg.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(l);
    t.push_back({p + ".enorm.weight", {H}});
    t.push_back({p + ".hnorm.weight", {H}});
    t.push_back({p + ".eh_proj.weight", {H, 2 * H}});
    t.push_back({p + ".shared_head.norm.weight", {H}});
    block_tensors(cfg, l, cfg.is_moe_layer(l), t);
  }
  size_t off = 0;
  infos_.clear();
  for (auto& [name, shape] : t) {
    ParamInfo p;
    p.name = name;
    p.shape = shape;
    p.offset = off;
    p.numel = 1;
    for (int64_t d : shape) p.numel *= d;
    p.trainable = !ends_with(name, "e_score_correction_bias");
    p.decay = shape.size() == 2;
    off += size_t(p.numel);
    infos_.push_back(std::move(p));
  }
  data_.assign(off, 0.0f);
}

Params Params::init(const ModelConfig& cfg, double init_std, uint64_t seed) {
  Params p;
  p.layout(cfg);
  std::mt19937_64 rng(seed);
  const double out_scale = 1.0 / std::sqrt(2.0 * double(cfg.num_hidden_layers + cfg.num_nextn_predict_layers));
  for (const ParamInfo& i : p.infos_) {
    float* d = p.data_.data() + i.offset;
    if (i.shape.size() == 1) {
      std::fill_n(d, i.numel, i.trainable ? 1.0f : 0.0f);
      continue;
    }
    double sd = init_std;
    if (ends_with(i.name, "o_proj.weight") || ends_with(i.name, "down_proj.weight")) sd *= out_scale;
    std::normal_distribution<float> nd(0.0f, float(sd));
    for (int64_t j = 0; j < i.numel; ++j) d[j] = nd(rng);
  }
  return p;
}

Params Params::load(const ModelConfig& cfg, const std::string& dir) {
  Params p;
  p.layout(cfg);
  TensorStore store = TensorStore::open(dir, LoadMode::Read);
  for (const ParamInfo& i : p.infos_) {
    const Tensor* t = store.find(i.name);
    if (!t) fail("{}: tensor {} is missing", dir, i.name);
    if (t->shape != i.shape) fail("{}: tensor {} has shape {}, expected {}", t->file, i.name, t->shape_str(), shape_str(i.shape));
    float* d = p.data_.data() + i.offset;
    for (int64_t j = 0; j < i.numel; ++j) {
      switch (t->dtype) {
        case DType::F32: std::memcpy(d + j, static_cast<const char*>(t->data) + 4 * j, 4); break;
        case DType::BF16: case DType::F16: {
          uint16_t b;
          std::memcpy(&b, static_cast<const char*>(t->data) + 2 * j, 2);
          d[j] = t->dtype == DType::BF16 ? bf16_to_f32(b) : f16_to_f32(b);
          break;
        }
        default: fail("{}: tensor {} has dtype {}; training needs F32/BF16/F16", t->file, i.name, dtype_name(t->dtype));
      }
    }
  }
  return p;
}

const ParamInfo* Params::find(const std::string& name) const {
  for (const ParamInfo& i : infos_)
    if (i.name == name) return &i;
  return nullptr;
}

float* Params::ptr(const std::string& name) {
  const ParamInfo* i = find(name);
  if (!i) fail("parameter {} does not exist", name);
  return data_.data() + i->offset;
}

namespace {

// Walks the model's structure, handing each slot the tensor of its HF name. Used for both the
// weight views and the gradient pointers, so the two can never disagree.
template <typename Fn>
auto walk(const ModelConfig& c, Fn&& fn) {
  auto block = [&](const std::string& p, bool moe, auto& lw) {
    fn(p + ".input_layernorm.weight", lw.input_layernorm);
    fn(p + ".post_attention_layernorm.weight", lw.post_attention_layernorm);
    const std::string a = p + ".self_attn";
    if (c.q_lora_rank > 0) {
      fn(a + ".q_a_proj.weight", lw.attn.q_a_proj);
      fn(a + ".q_a_layernorm.weight", lw.attn.q_a_layernorm);
      fn(a + ".q_b_proj.weight", lw.attn.q_b_proj);
    } else {
      fn(a + ".q_proj.weight", lw.attn.q_proj);
    }
    fn(a + ".kv_a_proj_with_mqa.weight", lw.attn.kv_a_proj_with_mqa);
    fn(a + ".kv_a_layernorm.weight", lw.attn.kv_a_layernorm);
    fn(a + ".kv_b_proj.weight", lw.attn.kv_b_proj);
    fn(a + ".o_proj.weight", lw.attn.o_proj);
    const std::string m = p + ".mlp";
    auto ffn = [&](const std::string& q, auto& f) {
      fn(q + ".gate_proj.weight", f.gate_proj);
      fn(q + ".up_proj.weight", f.up_proj);
      fn(q + ".down_proj.weight", f.down_proj);
    };
    if (!moe) return ffn(m, lw.mlp);
    fn(m + ".gate.weight", lw.moe.gate);
    lw.moe.experts.resize(size_t(c.n_routed_experts));
    for (int64_t e = 0; e < c.n_routed_experts; ++e) ffn(m + ".experts." + std::to_string(e), lw.moe.experts[size_t(e)]);
    if (c.n_shared_experts > 0) ffn(m + ".shared_experts", lw.moe.shared_experts);
  };
  return block;
}

}  // namespace

model::ModelWeights Params::weights() const {
  const ModelConfig& c = cfg_;
  std::unordered_map<std::string, const ParamInfo*> by_name;
  for (const ParamInfo& i : infos_) by_name[i.name] = &i;
  auto get = [&](const std::string& n) -> const ParamInfo& {
    auto it = by_name.find(n);
    if (it == by_name.end()) fail("parameter {} does not exist", n);
    return *it->second;
  };
  auto assign = [&](const std::string& n, auto& slot) {
    const ParamInfo& i = get(n);
    const float* d = data_.data() + i.offset;
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, kernels::WeightView>) {
      slot.dtype = DType::F32;
      slot.rows = i.shape[0];
      slot.cols = i.shape[1];
      slot.ld = i.shape[1];
      slot.data = d;
    } else {
      slot.assign(d, d + i.numel);
    }
  };
  model::ModelWeights w;
  assign("model.embed_tokens.weight", w.embed_tokens);
  auto block = walk(c, assign);
  w.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    model::LayerWeights& lw = w.layers[size_t(l)];
    lw.is_moe = c.is_moe_layer(l);
    const std::string p = "model.layers." + std::to_string(l);
    block(p, lw.is_moe, lw);
    if (lw.is_moe && c.topk_method == "noaux_tc") assign(p + ".mlp.gate.e_score_correction_bias", lw.moe.e_score_correction_bias);
  }
  assign("model.norm.weight", w.norm);
  if (c.tie_word_embeddings) w.lm_head = w.embed_tokens;
  else assign("lm_head.weight", w.lm_head);
  w.mtp.resize(size_t(c.num_nextn_predict_layers));
  for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
    model::MtpWeights& m = w.mtp[size_t(k)];
    const int64_t l = c.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(l);
    m.embed_tokens = w.embed_tokens;
    m.shared_head_head = w.lm_head;
    assign(p + ".enorm.weight", m.enorm);
    assign(p + ".hnorm.weight", m.hnorm);
    assign(p + ".eh_proj.weight", m.eh_proj);
    assign(p + ".shared_head.norm.weight", m.shared_head_norm);
    m.block.is_moe = c.is_moe_layer(l);
    block(p, m.block.is_moe, m.block);
    if (m.block.is_moe && c.topk_method == "noaux_tc") assign(p + ".mlp.gate.e_score_correction_bias", m.block.moe.e_score_correction_bias);
  }
  return w;
}

void Params::sync(model::ModelWeights& w) const { w = weights(); }

model::ModelGrads Params::grads(float* grad) const {
  const ModelConfig& c = cfg_;
  std::unordered_map<std::string, size_t> off;
  for (const ParamInfo& i : infos_) off[i.name] = i.offset;
  auto assign = [&](const std::string& n, float*& slot) {
    auto it = off.find(n);
    if (it == off.end()) fail("parameter {} does not exist", n);
    slot = grad + it->second;
  };
  model::ModelGrads g;
  assign("model.embed_tokens.weight", g.embed_tokens);
  auto block = walk(c, assign);
  g.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    block("model.layers." + std::to_string(l), c.is_moe_layer(l), g.layers[size_t(l)]);
  assign("model.norm.weight", g.norm);
  if (c.tie_word_embeddings) g.lm_head = g.embed_tokens;
  else assign("lm_head.weight", g.lm_head);
  g.mtp.resize(size_t(c.num_nextn_predict_layers));
  for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
    const int64_t l = c.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(l);
    model::MtpGrads& m = g.mtp[size_t(k)];
    assign(p + ".enorm.weight", m.enorm);
    assign(p + ".hnorm.weight", m.hnorm);
    assign(p + ".eh_proj.weight", m.eh_proj);
    assign(p + ".shared_head.norm.weight", m.shared_head_norm);
    block(p, c.is_moe_layer(l), m.block);
  }
  return g;
}

}  // namespace seek::train
