#include "model/weights.h"

#include <cstring>
#include <set>

#include "core/error.h"

namespace seek::model {
namespace {

// Binds tensors by name, remembering which ones were used so leftovers can be reported.
class Binder {
 public:
  Binder(const ModelConfig& cfg, const TensorStore& store) : cfg_(cfg), store_(store) {}

  const Tensor& tensor(const std::string& name, std::vector<int64_t> shape) {
    const Tensor* t = store_.find(name);
    if (!t) fail("{}: tensor {} is missing", store_.dir(), name);
    if (t->shape != shape)
      fail("{}: tensor {} has shape {}, expected {}", t->file, name, t->shape_str(),
           shape_str(shape));
    used_.insert(name);
    return *t;
  }

  // A linear weight [out, in]: F32/BF16/F16, or F8_E4M3 with its weight_scale_inv.
  WeightView linear(const std::string& name, int64_t out, int64_t in) {
    const Tensor& t = tensor(name, {out, in});
    WeightView v;
    v.dtype = t.dtype;
    v.rows = out;
    v.cols = in;
    v.ld = in;
    v.data = t.data;
    switch (t.dtype) {
      case DType::F32: case DType::BF16: case DType::F16: break;
      case DType::F8_E4M3: {
        const std::string sname = name + "_scale_inv";
        const int64_t sr = (out + 127) / 128, sc = (in + 127) / 128;
        const Tensor* s = store_.find(sname);
        if (!s) fail("{}: FP8 tensor {} has no {}", t.file, name, sname);
        if (s->dtype != DType::F32) fail("{}: {} must be F32, is {}", s->file, sname, dtype_name(s->dtype));
        if (s->shape != std::vector<int64_t>{sr, sc})
          fail("{}: {} has shape {}, expected [{}, {}] (128x128 blocks of {})", s->file, sname,
               s->shape_str(), sr, sc, t.shape_str());
        used_.insert(sname);
        v.scale_inv = static_cast<const float*>(s->data);
        v.scale_ld = sc;
        break;
      }
      default:
        fail("{}: tensor {} has dtype {}, expected a float type", t.file, name, dtype_name(t.dtype));
    }
    return v;
  }

  // Small vectors (norm gains, router bias) are widened to float32.
  std::vector<float> vec(const std::string& name, int64_t n) {
    const Tensor& t = tensor(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      switch (t.dtype) {
        case DType::F32: { float f; std::memcpy(&f, static_cast<const char*>(t.data) + 4 * i, 4); out[i] = f; break; }
        case DType::BF16: case DType::F16: {
          uint16_t b;
          std::memcpy(&b, static_cast<const char*>(t.data) + 2 * i, 2);
          out[i] = t.dtype == DType::BF16 ? bf16_to_f32(b) : f16_to_f32(b);
          break;
        }
        default:
          fail("{}: tensor {} has dtype {}, expected F32/BF16/F16", t.file, name, dtype_name(t.dtype));
      }
    }
    return out;
  }

  FfnWeights ffn(const std::string& p, int64_t inter) {
    const int64_t H = cfg_.hidden_size;
    return {linear(p + ".gate_proj.weight", inter, H), linear(p + ".up_proj.weight", inter, H),
            linear(p + ".down_proj.weight", H, inter)};
  }

  LayerWeights layer(int64_t l) {
    const ModelConfig& c = cfg_;
    const int64_t H = c.hidden_size, nh = c.num_attention_heads;
    const std::string p = "model.layers." + std::to_string(l);
    LayerWeights w;
    w.input_layernorm = vec(p + ".input_layernorm.weight", H);
    w.post_attention_layernorm = vec(p + ".post_attention_layernorm.weight", H);
    MlaWeights& a = w.attn;
    const std::string pa = p + ".self_attn";
    if (c.q_lora_rank > 0) {
      a.q_a_proj = linear(pa + ".q_a_proj.weight", c.q_lora_rank, H);
      a.q_a_layernorm = vec(pa + ".q_a_layernorm.weight", c.q_lora_rank);
      a.q_b_proj = linear(pa + ".q_b_proj.weight", nh * c.qk_head_dim(), c.q_lora_rank);
    } else {
      a.q_proj = linear(pa + ".q_proj.weight", nh * c.qk_head_dim(), H);
    }
    a.kv_a_proj_with_mqa =
        linear(pa + ".kv_a_proj_with_mqa.weight", c.kv_lora_rank + c.qk_rope_head_dim, H);
    a.kv_a_layernorm = vec(pa + ".kv_a_layernorm.weight", c.kv_lora_rank);
    a.kv_b_proj =
        linear(pa + ".kv_b_proj.weight", nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
    a.o_proj = linear(pa + ".o_proj.weight", H, nh * c.v_head_dim);
    w.is_moe = c.is_moe_layer(l);
    const std::string pm = p + ".mlp";
    if (!w.is_moe) {
      w.mlp = ffn(pm, c.intermediate_size);
      return w;
    }
    MoeWeights& m = w.moe;
    m.gate = linear(pm + ".gate.weight", c.n_routed_experts, H);
    if (c.topk_method == "noaux_tc")
      m.e_score_correction_bias = vec(pm + ".gate.e_score_correction_bias", c.n_routed_experts);
    for (int64_t e = 0; e < c.n_routed_experts; ++e)
      m.experts.push_back(ffn(pm + ".experts." + std::to_string(e), c.moe_intermediate_size));
    if (c.n_shared_experts > 0)
      m.shared_experts = ffn(pm + ".shared_experts", c.n_shared_experts * c.moe_intermediate_size);
    return w;
  }

  MtpWeights mtp(int64_t l) {
    const ModelConfig& c = cfg_;
    const int64_t H = c.hidden_size;
    const std::string p = "model.layers." + std::to_string(l);
    MtpWeights m;
    m.block = layer(l);
    // The release stores copies of the shared embedding and head; a checkpoint may omit them.
    m.embed_tokens = store_.find(p + ".embed_tokens.weight")
                         ? linear(p + ".embed_tokens.weight", c.vocab_size, H)
                         : WeightView{};
    m.enorm = vec(p + ".enorm.weight", H);
    m.hnorm = vec(p + ".hnorm.weight", H);
    m.eh_proj = linear(p + ".eh_proj.weight", H, 2 * H);
    m.shared_head_norm = vec(p + ".shared_head.norm.weight", H);
    m.shared_head_head = store_.find(p + ".shared_head.head.weight")
                             ? linear(p + ".shared_head.head.weight", c.vocab_size, H)
                             : WeightView{};
    return m;
  }

  void check_all_used() const {
    for (const Tensor& t : store_.tensors())
      if (!used_.count(t.name))
        fail("{}: unexpected tensor {} {} (not part of a {} model with this config.json)", t.file,
             t.name, t.shape_str(), cfg_.model_type);
  }

 private:
  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }
  const ModelConfig& cfg_;
  const TensorStore& store_;
  std::set<std::string> used_;
};

}  // namespace

ModelWeights bind_weights(const ModelConfig& cfg, const TensorStore& store) {
  Binder b(cfg, store);
  ModelWeights w;
  const int64_t H = cfg.hidden_size;
  w.embed_tokens = b.linear("model.embed_tokens.weight", cfg.vocab_size, H);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) w.layers.push_back(b.layer(l));
  w.norm = b.vec("model.norm.weight", H);
  if (cfg.tie_word_embeddings) w.lm_head = w.embed_tokens;
  else w.lm_head = b.linear("lm_head.weight", cfg.vocab_size, H);
  for (int64_t k = 0; k < cfg.num_nextn_predict_layers; ++k) {
    MtpWeights m = b.mtp(cfg.num_hidden_layers + k);
    if (!m.embed_tokens.data) m.embed_tokens = w.embed_tokens;
    if (!m.shared_head_head.data) m.shared_head_head = w.lm_head;
    w.mtp.push_back(std::move(m));
  }
  b.check_all_used();
  return w;
}

}  // namespace seek::model
