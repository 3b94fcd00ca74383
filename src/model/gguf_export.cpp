#include "model/gguf_export.h"

#include <cstring>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "model/gguf_names.h"
#include "model/tensors.h"
#include "model/weights.h"

namespace seek::model {
namespace {

// llama_ftype of a file whose matrices are (mostly) `t`.
uint32_t file_type(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S: every matrix Q4_K where it fits
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default:
      fail("seek export: --type {} is not supported (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)",
           dtype_name(t));
  }
}

// The type a matrix with rows of `cols` values is stored in when the file's type is `t`: a block
// type needs whole blocks per row; where they do not fit, as llama.cpp's quantizer falls back,
// Q8_0 (blocks of 32), else F16.
DType matrix_type(DType t, int64_t cols) {
  if (!dtype_is_blocked(t) || cols % dtype_block(t) == 0) return t;
  return cols % dtype_block(DType::Q8_0) == 0 ? DType::Q8_0 : DType::F16;
}

// n values of x stored as `t` at dst (dtype_bytes(t, n) bytes).
void store_row(const float* x, int64_t n, DType t, uint8_t* dst) {
  if (dtype_is_blocked(t)) return kernels::quantize_row(t, x, dst, n);
  const size_t es = dtype_size(t);
  for (int64_t j = 0; j < n; ++j, dst += es) {
    if (t == DType::F32) {
      std::memcpy(dst, &x[j], 4);
      continue;
    }
    const uint16_t h = t == DType::BF16 ? f32_to_bf16(x[j]) : f32_to_f16(x[j]);
    std::memcpy(dst, &h, 2);
  }
}

// Row r of v, widened to float32.
std::vector<float> row_of(const WeightView& v, int64_t r) {
  std::vector<float> out(size_t(v.cols));
  kernels::dequantize_row(v, r, out.data());
  return out;
}

class Exporter {
 public:
  Exporter(const Model& m, DType dtype, GgufWriter& w, bool mtp, bool k_m = false)
      : c_(m.config()), s_(m.weights_store()), dtype_(dtype), w_(w), mtp_(mtp), k_m_(k_m) {}

  // The type of GGUF matrix `gguf` in this file (before the whole-block fallback): the file's,
  // or under Q4_K_M Q6_K for the output and the ffn_down matrices of use_more_bits' layers.
  DType type_of(const std::string& gguf) const {
    if (!k_m_) return dtype_;
    if (gguf == "output.weight") return DType::Q6_K;
    if (gguf.find("ffn_down") == std::string::npos) return dtype_;
    const int64_t blocks = c_.num_hidden_layers + (mtp_ ? c_.num_nextn_predict_layers : 0);
    return q4_k_m_more_bits(std::atoll(gguf.c_str() + 4), blocks) ? DType::Q6_K : dtype_;
  }

  // A matrix [rows, cols] written as matrix_type(t, cols) (ne = {cols, rows}).
  void matrix(const std::string& gguf, const std::string& hf, int64_t rows, int64_t cols, DType t) {
    const TensorStore* s = &s_;
    t = matrix_type(t, cols);
    w_.add_tensor(gguf, t, {cols, rows}, [s, hf, rows, cols, t](uint8_t* dst) {
      const WeightView v = linear_view(*s, hf, rows, cols);
      for (int64_t r = 0; r < rows; ++r)
        store_row(row_of(v, r).data(), cols, t, dst + r * dtype_bytes(t, cols));
    });
  }

  // Norm gains and the router bias: F32 vectors.
  void vector(const std::string& gguf, const std::string& hf, int64_t n) {
    const TensorStore* s = &s_;
    w_.add_tensor(gguf, DType::F32, {n}, [s, hf, n](uint8_t* dst) {
      std::vector<float> x(static_cast<size_t>(n));
      if (!copy_as_f32(s->get(hf), x.data())) fail("seek export: {} is not a float vector", hf);
      std::memcpy(dst, x.data(), size_t(n) * 4);
    });
  }

  // Routed experts e = 0..E-1 of one projection stacked into [E, rows, cols].
  void experts(const std::string& gguf, int64_t layer, const std::string& proj, int64_t rows,
               int64_t cols) {
    const TensorStore* s = &s_;
    const DType t = matrix_type(type_of(gguf), cols);
    const int64_t E = c_.n_routed_experts;
    w_.add_tensor(gguf, t, {cols, rows, E}, [s, layer, proj, rows, cols, E, t](uint8_t* dst) {
      for (int64_t e = 0; e < E; ++e) {
        const std::string hf = "model.layers." + std::to_string(layer) + ".mlp.experts." +
                               std::to_string(e) + "." + proj;
        const WeightView v = linear_view(*s, hf, rows, cols);
        for (int64_t r = 0; r < rows; ++r)
          store_row(row_of(v, r).data(), cols, t, dst + (e * rows + r) * dtype_bytes(t, cols));
      }
    });
  }

  // kv_b_proj [nh·(d_nope + d_v), d_c] -> attn_k_b [nh, d_c, d_nope] (each head's k rows
  // transposed) and attn_v_b [nh, d_v, d_c]. In a block-quantized file both stay BF16: llama.cpp's
  // CPU build (node-llama-cpp 3.21.1, weight repacking on) aborts on a Q8_0 attn_k_b
  // (GGML_ASSERT(*cur_backend_id != -1) in the scheduler), and they are ~1% of a layer's bytes.
  void kv_b(const std::string& blk, const std::string& hf) {
    const TensorStore* s = &s_;
    const int64_t nh = c_.num_attention_heads, dc = c_.kv_lora_rank, dn = c_.qk_nope_head_dim,
                  dv = c_.v_head_dim;
    const DType split = dtype_is_blocked(dtype_) ? DType::BF16 : dtype_;
    const DType tk = matrix_type(split, dn), tv = matrix_type(split, dc);
    w_.add_tensor(blk + "attn_k_b.weight", tk, {dn, dc, nh}, [=](uint8_t* dst) {
      const WeightView v = linear_view(*s, hf, nh * (dn + dv), dc);
      std::vector<float> kt(size_t(dc * dn));  // one head's k rows, transposed: [d_c, d_nope]
      for (int64_t h = 0; h < nh; ++h) {
        for (int64_t i = 0; i < dn; ++i) {
          const std::vector<float> x = row_of(v, h * (dn + dv) + i);
          for (int64_t col = 0; col < dc; ++col) kt[size_t(col * dn + i)] = x[size_t(col)];
        }
        for (int64_t col = 0; col < dc; ++col)
          store_row(kt.data() + col * dn, dn, tk, dst + (h * dc + col) * dtype_bytes(tk, dn));
      }
    });
    w_.add_tensor(blk + "attn_v_b.weight", tv, {dc, dv, nh}, [=](uint8_t* dst) {
      const WeightView v = linear_view(*s, hf, nh * (dn + dv), dc);
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t j = 0; j < dv; ++j)
          store_row(row_of(v, h * (dn + dv) + dn + j).data(), dc, tv,
                    dst + (h * dv + j) * dtype_bytes(tv, dc));
    });
  }

  void all() {
    for (const TensorSpec& s : model_tensors(c_)) {
      if (s.mtp && !mtp_) continue;
      // An MTP module's copy of the embedding or head that the checkpoint shares instead.
      if (!s.tied_to.empty() && !s_.find(s.name)) continue;
      const std::string blk = "blk." + std::to_string(s.layer) + ".";
      if (s.expert > 0) continue;
      if (s.expert == 0) {
        const std::string proj = s.name.substr(s.name.rfind('.', s.name.size() - 8) + 1);
        for (const GgufLayerName& n : kGgufExpertNames)
          if (proj == n.hf) experts(blk + n.gguf, s.layer, proj, s.shape[0], s.shape[1]);
        continue;
      }
      if (s.name.ends_with("self_attn.kv_b_proj.weight")) {
        kv_b(blk, s.name);
        continue;
      }
      const std::optional<std::string> g = gguf_name_of(s.name);
      if (!g) fail("seek export: no GGUF name for tensor {}", s.name);
      if (s.shape.size() == 1) vector(*g, s.name, s.shape[0]);
      else matrix(*g, s.name, s.shape[0], s.shape[1],
                  s.role == TensorRole::Router ? DType::F32 : type_of(*g));
    }
  }

 private:
  const ModelConfig& c_;
  const TensorStore& s_;
  DType dtype_;
  GgufWriter& w_;
  bool mtp_;
  bool k_m_;
};

}  // namespace

void add_config_to_gguf(const ModelConfig& c, GgufWriter& w, bool mtp) {
  const std::string a = "deepseek2.";
  auto u32 = [&](const std::string& k, int64_t v) { w.set(a + k, GgufValue::u32(uint32_t(v))); };
  auto f32 = [&](const std::string& k, double v) { w.set(a + k, GgufValue::f32(float(v))); };
  const int64_t nextn = mtp ? c.num_nextn_predict_layers : 0;
  u32("block_count", c.num_hidden_layers + nextn);
  if (nextn > 0) u32("nextn_predict_layers", nextn);
  u32("context_length", c.max_position_embeddings);
  u32("embedding_length", c.hidden_size);
  u32("feed_forward_length", c.intermediate_size);
  u32("attention.head_count", c.num_attention_heads);
  u32("attention.head_count_kv", 1);  // MLA as MQA over the latent (convert_hf_to_gguf.py)
  f32("rope.freq_base", c.rope_theta);
  f32("attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  if (c.n_routed_experts > 0) {
    u32("expert_used_count", c.num_experts_per_tok);
    u32("expert_count", c.n_routed_experts);
  }
  u32("leading_dense_block_count",
      c.n_routed_experts > 0 ? c.first_k_dense_replace : c.num_hidden_layers + nextn);
  u32("vocab_size", c.vocab_size);
  // Written even without a q LoRA (0 = q_proj): llama.cpp reads the key unless it takes the model
  // for a "lite" one, which it decides by layer count alone (27 or 26 layers, as V2-Lite), so a
  // V2-Lite geometry of any other depth would not load without it (convert_hf_to_gguf.py omits it).
  u32("attention.q_lora_rank", c.q_lora_rank);
  u32("attention.kv_lora_rank", c.kv_lora_rank);
  u32("attention.key_length", c.kv_lora_rank + c.qk_rope_head_dim);
  u32("attention.value_length", c.kv_lora_rank);
  u32("attention.key_length_mla", c.qk_head_dim());
  u32("attention.value_length_mla", c.v_head_dim);
  u32("expert_feed_forward_length", c.n_routed_experts > 0 ? c.moe_intermediate_size : c.intermediate_size);
  u32("expert_shared_count", c.n_shared_experts);
  f32("expert_weights_scale", c.routed_scaling_factor);
  w.set(a + "expert_weights_norm", GgufValue::boolean(c.norm_topk_prob));
  u32("expert_gating_func", c.scoring_func == ScoringFunc::Sigmoid ? 2 : 1);
  if (c.n_group > 1) {
    u32("expert_group_count", c.n_group);
    u32("expert_group_used_count", c.topk_group);
  }
  u32("rope.dimension_count", c.qk_rope_head_dim);
  // BOS / EOS belong to the tokenizer in GGUF; the config's go first, a tokenizer's replace them.
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(c.bos_token_id)));
  if (!c.eos_token_ids.empty())
    w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(c.eos_token_ids[0])));
  if (c.rope_scaling && c.rope_scaling->type == "yarn") {
    const RopeScaling& y = *c.rope_scaling;
    if (y.mscale != y.mscale_all_dim)
      fail("seek export: rope_scaling mscale {} != mscale_all_dim {}: llama.cpp's deepseek2 "
           "assumes they are equal", y.mscale, y.mscale_all_dim);
    w.set(a + "rope.scaling.type", GgufValue::str("yarn"));
    f32("rope.scaling.factor", y.factor);
    u32("rope.scaling.original_context_length", y.original_max_position_embeddings);
    f32("rope.scaling.yarn_log_multiplier", 0.1 * y.mscale_all_dim);
    f32("rope.scaling.yarn_beta_fast", y.beta_fast);
    f32("rope.scaling.yarn_beta_slow", y.beta_slow);
  }
}

namespace {

void add_model(const Model& m, DType dtype, const std::string& name, GgufWriter& w, bool mtp,
               bool k_m) {
  w.set("general.architecture", GgufValue::str("deepseek2"));
  w.set("general.type", GgufValue::str("model"));
  if (!name.empty()) w.set("general.name", GgufValue::str(name));
  w.set("general.file_type", GgufValue::u32(k_m ? 15 : file_type(dtype)));  // 15: MOSTLY_Q4_K_M
  add_config_to_gguf(m.config(), w, mtp);
  Exporter(m, dtype, w, mtp, k_m).all();
}

}  // namespace

void add_model_to_gguf(const Model& m, DType dtype, const std::string& name, GgufWriter& w,
                       bool mtp) {
  add_model(m, dtype, name, w, mtp, false);
}

void add_model_to_gguf_q4_k_m(const Model& m, const std::string& name, GgufWriter& w, bool mtp) {
  add_model(m, DType::Q4_K, name, w, mtp, true);
}

}  // namespace seek::model
