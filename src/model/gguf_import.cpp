#include "model/gguf_import.h"

#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "kernels/ops.h"
#include "model/gguf_names.h"
#include "model/tensors.h"

namespace seek::model {
namespace {

constexpr std::string_view kArch = "deepseek2";

class Meta {
 public:
  Meta(const GgufHeader& h, const std::string& source) : h_(h), source_(source) {}

  const GgufValue* find(const std::string& key) const { return h_.find(key); }

  int64_t integer(const std::string& key, std::optional<int64_t> fallback = {}) const {
    const GgufValue* v = h_.find(key);
    if (!v) {
      if (fallback) return *fallback;
      fail("{}: missing metadata {}", source_, key);
    }
    // llama.cpp allows per-layer arrays for some counts; Seek needs them uniform.
    if (v->type == GgufType::Array && !v->ints.empty()) {
      for (int64_t x : v->ints)
        if (x != v->ints[0]) fail("{}: {} differs between layers (not supported)", source_, key);
      return v->ints[0];
    }
    if (!v->is_integer())
      fail("{}: metadata {} must be an integer, is {}", source_, key, gguf_type_name(v->type));
    return v->i;
  }
  double real(const std::string& key, double fallback) const {
    const GgufValue* v = h_.find(key);
    if (!v) return fallback;
    if (v->is_real()) return v->f;
    if (v->is_integer() && v->type != GgufType::Bool) return double(v->i);
    fail("{}: metadata {} must be a number, is {}", source_, key, gguf_type_name(v->type));
  }
  bool flag(const std::string& key, bool fallback) const {
    const GgufValue* v = h_.find(key);
    if (!v) return fallback;
    if (!v->is_integer()) fail("{}: metadata {} must be a bool, is {}", source_, key, gguf_type_name(v->type));
    return v->i != 0;
  }
  std::string str(const std::string& key, const std::string& fallback) const {
    const GgufValue* v = h_.find(key);
    if (!v) return fallback;
    if (v->type != GgufType::String)
      fail("{}: metadata {} must be a string, is {}", source_, key, gguf_type_name(v->type));
    return v->s;
  }

 private:
  const GgufHeader& h_;
  const std::string& source_;
};

const GgufTensorInfo* find_tensor(const GgufHeader& h, std::string_view name) {
  for (const GgufTensorInfo& t : h.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

bool has_router_bias(const GgufHeader& h) {
  for (const GgufTensorInfo& t : h.tensors)
    if (t.name.ends_with(".exp_probs_b.bias")) return true;
  return false;
}

}  // namespace

ModelConfig gguf_model_config(const GgufHeader& h, const std::string& src) {
  Meta m(h, src);
  const std::string arch = m.str("general.architecture", "");
  if (arch != kArch)
    fail("{}: general.architecture is \"{}\"; Seek reads deepseek2 GGUF files", src, arch);
  const std::string a = std::string(kArch) + ".";
  ModelConfig c;
  const int64_t nextn = m.integer(a + "nextn_predict_layers", 0);
  c.num_hidden_layers = m.integer(a + "block_count") - nextn;
  if (nextn < 0 || c.num_hidden_layers <= 0)
    fail("{}: {}nextn_predict_layers {} leaves no main layers of block_count {}", src, a, nextn,
         c.num_hidden_layers + nextn);
  // MTP modules load when their tensors are there (files that count them but left them out
  // run without).
  c.num_nextn_predict_layers =
      find_tensor(h, "blk." + std::to_string(c.num_hidden_layers) + ".nextn.eh_proj.weight") ? nextn : 0;
  c.hidden_size = m.integer(a + "embedding_length");
  c.intermediate_size = m.integer(a + "feed_forward_length", 0);
  c.num_attention_heads = m.integer(a + "attention.head_count");
  c.q_lora_rank = m.integer(a + "attention.q_lora_rank", 0);
  c.kv_lora_rank = m.integer(a + "attention.kv_lora_rank");
  c.qk_rope_head_dim = m.integer(a + "rope.dimension_count");
  // Files since llama.cpp's MLA rework write the MQA view as key/value_length (kv_lora_rank +
  // rope, kv_lora_rank) and the per-head sizes as *_mla; older ones had the per-head sizes.
  const int64_t key_len = m.find(a + "attention.key_length_mla")
                              ? m.integer(a + "attention.key_length_mla")
                              : m.integer(a + "attention.key_length");
  c.qk_nope_head_dim = key_len - c.qk_rope_head_dim;
  c.v_head_dim = m.find(a + "attention.value_length_mla") ? m.integer(a + "attention.value_length_mla")
                                                          : m.integer(a + "attention.value_length");
  c.n_routed_experts = m.integer(a + "expert_count", 0);
  c.num_experts_per_tok = m.integer(a + "expert_used_count", 0);
  c.n_shared_experts = m.integer(a + "expert_shared_count", 0);
  c.moe_intermediate_size = m.integer(a + "expert_feed_forward_length", 0);
  c.first_k_dense_replace = m.integer(a + "leading_dense_block_count", 0);
  c.routed_scaling_factor = m.real(a + "expert_weights_scale", 1.0);
  c.norm_topk_prob = m.flag(a + "expert_weights_norm", false);
  // llama_expert_gating_func_type: 1 softmax, 2 sigmoid; DeepSeek-V2 files predate the key.
  const int64_t gating = m.integer(a + "expert_gating_func", 1);
  if (gating != 1 && gating != 2)
    fail("{}: {}expert_gating_func {} is not supported (1 softmax, 2 sigmoid)", src, a, gating);
  c.scoring_func = gating == 2 ? ScoringFunc::Sigmoid : ScoringFunc::Softmax;
  c.model_type = gating == 2 ? "deepseek_v3" : "deepseek_v2";
  c.n_group = m.integer(a + "expert_group_count", 1);
  c.topk_group = m.integer(a + "expert_group_used_count", c.n_group);
  c.topk_method = has_router_bias(h) ? TopkMethod::NoauxTc
                  : c.n_group > 1    ? TopkMethod::GroupLimitedGreedy
                                     : TopkMethod::Greedy;
  c.rope_theta = m.real(a + "rope.freq_base", 10000.0);
  c.rms_norm_eps = m.real(a + "attention.layer_norm_rms_epsilon", 1e-6);
  c.max_position_embeddings = m.integer(a + "context_length", 4096);
  const std::string scaling = m.str(a + "rope.scaling.type", "none");
  if (scaling == "yarn") {
    RopeScaling y;
    y.type = "yarn";
    y.factor = m.real(a + "rope.scaling.factor", 1.0);
    y.original_max_position_embeddings = m.integer(a + "rope.scaling.original_context_length");
    y.beta_fast = m.real(a + "rope.scaling.yarn_beta_fast", 32.0);
    y.beta_slow = m.real(a + "rope.scaling.yarn_beta_slow", 1.0);
    y.mscale_all_dim = double(float(m.real(a + "rope.scaling.yarn_log_multiplier", 0.0)) / 0.1f);
    y.mscale = y.mscale_all_dim;
    c.rope_scaling = y;
  } else if (scaling != "none") {
    fail("{}: {}rope.scaling.type \"{}\" is not supported (yarn or none)", src, a, scaling);
  }
  c.tie_word_embeddings = find_tensor(h, "output.weight") == nullptr;
  const GgufValue* tokens = h.find("tokenizer.ggml.tokens");
  c.vocab_size = m.integer(a + "vocab_size", tokens ? int64_t(tokens->array_size()) : 0);
  if (!m.find(a + "vocab_size"))
    if (const GgufTensorInfo* e = find_tensor(h, "token_embd.weight"); e && e->ne.size() == 2)
      c.vocab_size = e->ne[1];
  c.bos_token_id = m.integer("tokenizer.ggml.bos_token_id", 0);
  if (m.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids.push_back(m.integer("tokenizer.ggml.eos_token_id"));
  c.validate(src);
  return c;
}

namespace {

// Rebuilds HF's kv_b_proj [nh·(d_nope + d_v), d_c] (rows per head [k_nope | v]) from
//   attn_k_b [nh, d_c, d_nope]  (k_b_proj transposed per head: the absorbed form) and
//   attn_v_b [nh, d_v, d_c].
// A permutation of elements: halves of one scalar dtype keep it (no rounding); block-quantized
// or mixed halves are widened to F32 first (a transpose cannot keep 32-element blocks), and the
// result is F32. `*dtype` is the rebuilt tensor's dtype.
std::shared_ptr<std::vector<uint8_t>> rebuild_kv_b(const ModelConfig& c, const GgufFile& f,
                                                   const GgufTensorInfo& kb,
                                                   const GgufTensorInfo& vb, DType* dtype) {
  const int64_t nh = c.num_attention_heads, dc = c.kv_lora_rank, dn = c.qk_nope_head_dim,
                dv = c.v_head_dim;
  const std::string& src = f.path();
  if (kb.ne != std::vector<int64_t>{dn, dc, nh})
    fail("{}: tensor {} has shape {}, expected [{}, {}, {}]", src, kb.name, shape_str(kb.shape()),
         nh, dc, dn);
  if (vb.ne != std::vector<int64_t>{dc, dv, nh})
    fail("{}: tensor {} has shape {}, expected [{}, {}, {}]", src, vb.name, shape_str(vb.shape()),
         nh, dv, dc);
  const uint8_t* k = f.tensor_data(kb);
  const uint8_t* v = f.tensor_data(vb);
  std::vector<float> kf, vf;  // the widened halves, when they must be
  *dtype = kb.dtype;
  if (dtype_is_blocked(kb.dtype) || dtype_is_blocked(vb.dtype) || kb.dtype != vb.dtype) {
    auto widen = [&](const GgufTensorInfo& t, const uint8_t* p, int64_t rows, int64_t cols) {
      if (dtype_is_blocked(t.dtype) && cols % dtype_block(t.dtype) != 0)
        fail("{}: tensor {} ({}) has rows of {} values, not whole blocks of {}", src, t.name,
             dtype_name(t.dtype), cols, dtype_block(t.dtype));
      std::vector<float> out(size_t(rows * cols));
      WeightView w;
      w.dtype = t.dtype;
      w.rows = rows;
      w.cols = w.ld = cols;
      w.data = p;
      for (int64_t r = 0; r < rows; ++r) kernels::dequantize_row(w, r, out.data() + r * cols);
      return out;
    };
    kf = widen(kb, k, nh * dc, dn);
    vf = widen(vb, v, nh * dv, dc);
    k = reinterpret_cast<const uint8_t*>(kf.data());
    v = reinterpret_cast<const uint8_t*>(vf.data());
    *dtype = DType::F32;
  }
  const size_t es = dtype_size(*dtype);
  auto out = std::make_shared<std::vector<uint8_t>>(size_t(nh * (dn + dv) * dc) * es);
  uint8_t* o = out->data();
  for (int64_t h = 0; h < nh; ++h) {
    const int64_t row0 = h * (dn + dv);
    for (int64_t i = 0; i < dn; ++i)
      for (int64_t col = 0; col < dc; ++col)
        std::memcpy(o + size_t((row0 + i) * dc + col) * es, k + size_t((h * dc + col) * dn + i) * es, es);
    std::memcpy(o + size_t((row0 + dn) * dc) * es, v + size_t(h * dv * dc) * es, size_t(dv * dc) * es);
  }
  return out;
}

Tensor make_tensor(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                   size_t nbytes, const std::string& file) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = data;
  t.nbytes = nbytes;
  t.file = file;
  const size_t es = dtype_size(dtype);
  t.aligned = es == 0 || uintptr_t(data) % es == 0;
  return t;
}

}  // namespace

GgufModel import_gguf(const std::string& path, LoadMode mode, const ProgressFn& progress) {
  GgufFile f = GgufFile::open(path, mode, progress);
  const GgufHeader& h = f.header();
  if (const GgufValue* n = h.find("split.count"); n && n->is_integer() && n->i > 1)
    fail("{}: one of {} split GGUF files; merge them first (llama-gguf-split --merge)", path, n->i);
  GgufModel out;
  out.config = gguf_model_config(h, path);
  const ModelConfig& c = out.config;

  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<const void>> owners{f.keep_alive()};
  std::set<std::string_view> used;
  std::unordered_map<std::string_view, const GgufTensorInfo*> by_name;  // V3: ~47k lookups
  for (const GgufTensorInfo& t : h.tensors) by_name.emplace(t.name, &t);
  auto lookup = [&](const std::string& name) -> const GgufTensorInfo* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };
  auto need = [&](const std::string& gguf, const std::string& hf) -> const GgufTensorInfo& {
    const GgufTensorInfo* t = lookup(gguf);
    if (!t) fail("{}: tensor {} (the model's {}) is missing", path, gguf, hf);
    used.insert(t->name);
    return *t;
  };
  for (const TensorSpec& s : model_tensors(c)) {
    const std::string blk = "blk." + std::to_string(s.layer) + ".";
    if (s.expert >= 0) {
      const std::string proj = s.name.substr(s.name.rfind('.', s.name.size() - 8) + 1);
      std::string stacked;
      for (const GgufLayerName& n : kGgufExpertNames)
        if (proj == n.hf) stacked = blk + n.gguf;
      const GgufTensorInfo& t = need(stacked, s.name);
      const std::vector<int64_t> want{s.shape[1], s.shape[0], c.n_routed_experts};
      if (t.ne != want)
        fail("{}: tensor {} has shape {}, expected [{}, {}, {}] (experts, rows, cols)", path,
             t.name, shape_str(t.shape()), want[2], want[1], want[0]);
      const size_t per = size_t(t.nbytes / uint64_t(c.n_routed_experts));
      tensors.push_back(make_tensor(s.name, t.dtype, s.shape, f.tensor_data(t) + size_t(s.expert) * per,
                                    per, path));
      continue;
    }
    if (s.name.ends_with("self_attn.kv_b_proj.weight") && !lookup(blk + "attn_kv_b.weight")) {
      const GgufTensorInfo& kb = need(blk + "attn_k_b.weight", s.name);
      const GgufTensorInfo& vb = need(blk + "attn_v_b.weight", s.name);
      DType dt;
      auto buf = rebuild_kv_b(c, f, kb, vb, &dt);
      tensors.push_back(make_tensor(s.name, dt, s.shape, buf->data(), buf->size(), path));
      owners.push_back(std::move(buf));
      continue;
    }
    const std::optional<std::string> g = gguf_name_of(s.name);
    if (!g) fail("{}: no GGUF name for tensor {}", path, s.name);
    if (!s.tied_to.empty() && !lookup(*g)) continue;
    const GgufTensorInfo& t = need(*g, s.name);
    tensors.push_back(make_tensor(s.name, t.dtype, t.shape(), f.tensor_data(t), size_t(t.nbytes), path));
  }
  for (const GgufTensorInfo& t : h.tensors) {
    if (used.count(t.name)) continue;
    // MTP blocks blk.{n_layer + k}.* of a file whose modules are not loaded (gguf_model_config).
    if (t.name.starts_with("blk.")) {
      const int64_t layer = std::atoll(t.name.c_str() + 4);
      if (layer >= c.num_hidden_layers) continue;
    }
    fail("{}: unexpected tensor {} {} (not part of a deepseek2 model with this metadata)", path,
         t.name, shape_str(t.shape()));
  }
  out.store = TensorStore::adopt(path, mode, std::move(tensors), std::move(owners));
  return out;
}

}  // namespace seek::model
