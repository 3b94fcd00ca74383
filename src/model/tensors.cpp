#include "model/tensors.h"

namespace seek::model {

namespace {

// A member of an optional struct: null when the struct is.
template <typename S, typename M>
M* at(S* s, M S::*m) {
  return s ? &(s->*m) : nullptr;
}

template <typename T>
T* elem(std::vector<T>* v, int64_t i) {
  return v ? &(*v)[size_t(i)] : nullptr;
}

class Walk {
 public:
  Walk(const ModelConfig& c, TensorOrder order, const TensorVisitor& fn)
      : c_(c), training_(order == TensorOrder::Training), fn_(fn) {}

  void model(ModelWeights* w, ModelGrads* g) {
    const int64_t H = c_.hidden_size, V = c_.vocab_size, L = c_.num_hidden_layers;
    const std::string embed = "model.embed_tokens.weight";
    const std::string head = c_.tie_word_embeddings ? embed : "lm_head.weight";
    matrix(embed, {V, H}, TensorRole::Embedding, at(w, &ModelWeights::embed_tokens),
           at(g, &ModelGrads::embed_tokens));
    if (w) w->layers.resize(size_t(L));
    if (g) g->layers.resize(size_t(L));
    for (int64_t l = 0; l < L; ++l) block(l, elem(at(w, &ModelWeights::layers), l),
                                          elem(at(g, &ModelGrads::layers), l));
    norm("model.norm.weight", H, at(w, &ModelWeights::norm), at(g, &ModelGrads::norm));
    if (!c_.tie_word_embeddings)
      matrix(head, {V, H}, TensorRole::Head, at(w, &ModelWeights::lm_head),
             at(g, &ModelGrads::lm_head));

    const int64_t K = c_.num_nextn_predict_layers;
    if (w) w->mtp.resize(size_t(K));
    if (g) g->mtp.resize(size_t(K));
    for (int64_t k = 0; k < K; ++k) {
      MtpWeights* mw = elem(at(w, &ModelWeights::mtp), k);
      MtpGrads* mg = elem(at(g, &ModelGrads::mtp), k);
      layer_ = L + k;
      mtp_ = true;
      const std::string p = prefix();
      // The release stores the module's own copies of the shared embedding and head.
      auto copy = [&](const std::string& name, const std::string& of, TensorRole role,
                      WeightView* view) {
        tied_to_ = of;
        matrix(p + name, {V, H}, role, view, nullptr);
        tied_to_.clear();
      };
      auto embed_copy = [&] {
        copy("embed_tokens.weight", embed, TensorRole::Embedding,
             at(mw, &MtpWeights::embed_tokens));
      };
      auto head_copy = [&] {
        copy("shared_head.head.weight", head, TensorRole::Head,
             at(mw, &MtpWeights::shared_head_head));
      };
      auto head_norm = [&] {
        norm(p + "shared_head.norm.weight", H, at(mw, &MtpWeights::shared_head_norm),
             at(mg, &MtpGrads::shared_head_norm));
      };
      if (!training_) embed_copy();
      norm(p + "enorm.weight", H, at(mw, &MtpWeights::enorm), at(mg, &MtpGrads::enorm));
      norm(p + "hnorm.weight", H, at(mw, &MtpWeights::hnorm), at(mg, &MtpGrads::hnorm));
      matrix(p + "eh_proj.weight", {H, 2 * H}, TensorRole::Linear, at(mw, &MtpWeights::eh_proj),
             at(mg, &MtpGrads::eh_proj));
      if (training_) head_norm();
      block(L + k, at(mw, &MtpWeights::block), at(mg, &MtpGrads::block));
      layer_ = L + k;  // block() resets it
      if (training_) embed_copy();
      else head_norm();
      head_copy();
      layer_ = -1;
      mtp_ = false;
    }

    // Views that share another tensor (see for_each_tensor).
    if (w) {
      if (c_.tie_word_embeddings) w->lm_head = w->embed_tokens;
      for (MtpWeights& m : w->mtp) {
        if (!m.embed_tokens.data) m.embed_tokens = w->embed_tokens;
        if (!m.shared_head_head.data) m.shared_head_head = w->lm_head;
      }
    }
    if (g && c_.tie_word_embeddings) g->lm_head = g->embed_tokens;
  }

 private:
  std::string prefix() const { return "model.layers." + std::to_string(layer_) + "."; }

  void emit(std::string name, std::vector<int64_t> shape, TensorRole role, TensorSlots slots,
            bool fp8 = false, bool residual_out = false) {
    fn_(TensorSpec{.name = std::move(name), .shape = std::move(shape), .role = role,
                   .layer = layer_, .expert = expert_, .mtp = mtp_, .fp8 = fp8,
                   .residual_out = residual_out, .tied_to = tied_to_},
        slots);
  }
  void matrix(std::string name, std::vector<int64_t> shape, TensorRole role, WeightView* view,
              float** grad, bool fp8 = false, bool residual_out = false) {
    emit(std::move(name), std::move(shape), role, {view, nullptr, grad}, fp8, residual_out);
  }
  void norm(std::string name, int64_t n, std::vector<float>* vec, float** grad,
            TensorRole role = TensorRole::Norm) {
    emit(std::move(name), {n}, role, {nullptr, vec, grad});
  }

  // SwiGLU: down(silu(gate(x)) · up(x)).
  void ffn(const std::string& p, int64_t inter, FfnWeights* w, FfnGrads* g) {
    const int64_t H = c_.hidden_size;
    matrix(p + "gate_proj.weight", {inter, H}, TensorRole::Linear, at(w, &FfnWeights::gate_proj),
           at(g, &FfnGrads::gate_proj), true);
    matrix(p + "up_proj.weight", {inter, H}, TensorRole::Linear, at(w, &FfnWeights::up_proj),
           at(g, &FfnGrads::up_proj), true);
    matrix(p + "down_proj.weight", {H, inter}, TensorRole::Linear, at(w, &FfnWeights::down_proj),
           at(g, &FfnGrads::down_proj), true, true);
  }

  // One decoder block: a main layer, or an MTP module's.
  void block(int64_t l, LayerWeights* w, LayerGrads* g) {
    const ModelConfig& c = c_;
    const int64_t H = c.hidden_size, nh = c.num_attention_heads;
    layer_ = l;
    const std::string p = prefix();
    const bool moe = c.is_moe_layer(l);
    if (w) w->is_moe = moe;
    auto post_norm = [&] {
      norm(p + "post_attention_layernorm.weight", H, at(w, &LayerWeights::post_attention_layernorm),
           at(g, &LayerGrads::post_attention_layernorm));
    };
    norm(p + "input_layernorm.weight", H, at(w, &LayerWeights::input_layernorm),
         at(g, &LayerGrads::input_layernorm));
    if (training_) post_norm();

    MlaWeights* a = at(w, &LayerWeights::attn);
    MlaGrads* ag = at(g, &LayerGrads::attn);
    const std::string pa = p + "self_attn.";
    const int64_t q_out = nh * c.qk_head_dim();
    if (c.q_lora_rank > 0) {
      matrix(pa + "q_a_proj.weight", {c.q_lora_rank, H}, TensorRole::Linear,
             at(a, &MlaWeights::q_a_proj), at(ag, &MlaGrads::q_a_proj), true);
      norm(pa + "q_a_layernorm.weight", c.q_lora_rank, at(a, &MlaWeights::q_a_layernorm),
           at(ag, &MlaGrads::q_a_layernorm));
      matrix(pa + "q_b_proj.weight", {q_out, c.q_lora_rank}, TensorRole::Linear,
             at(a, &MlaWeights::q_b_proj), at(ag, &MlaGrads::q_b_proj), true);
    } else {
      matrix(pa + "q_proj.weight", {q_out, H}, TensorRole::Linear, at(a, &MlaWeights::q_proj),
             at(ag, &MlaGrads::q_proj), true);
    }
    matrix(pa + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H},
           TensorRole::Linear, at(a, &MlaWeights::kv_a_proj_with_mqa),
           at(ag, &MlaGrads::kv_a_proj_with_mqa), true);
    norm(pa + "kv_a_layernorm.weight", c.kv_lora_rank, at(a, &MlaWeights::kv_a_layernorm),
         at(ag, &MlaGrads::kv_a_layernorm));
    matrix(pa + "kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
           TensorRole::Linear, at(a, &MlaWeights::kv_b_proj), at(ag, &MlaGrads::kv_b_proj), true);
    matrix(pa + "o_proj.weight", {H, nh * c.v_head_dim}, TensorRole::Linear,
           at(a, &MlaWeights::o_proj), at(ag, &MlaGrads::o_proj), true, true);
    if (!training_) post_norm();

    const std::string pm = p + "mlp.";
    if (!moe) {
      ffn(pm, c.intermediate_size, at(w, &LayerWeights::mlp), at(g, &LayerGrads::mlp));
      layer_ = -1;
      return;
    }
    MoeWeights* m = at(w, &LayerWeights::moe);
    MoeGrads* mg = at(g, &LayerGrads::moe);
    const int64_t E = c.n_routed_experts;
    matrix(pm + "gate.weight", {E, H}, TensorRole::Router, at(m, &MoeWeights::gate),
           at(mg, &MoeGrads::gate));
    if (c.topk_method == TopkMethod::NoauxTc)
      norm(pm + "gate.e_score_correction_bias", E, at(m, &MoeWeights::e_score_correction_bias),
           nullptr, TensorRole::RouterBias);
    if (m) m->experts.resize(size_t(E));
    if (mg) mg->experts.resize(size_t(E));
    for (int64_t e = 0; e < E; ++e) {
      expert_ = e;
      ffn(pm + "experts." + std::to_string(e) + ".", c.moe_intermediate_size,
          elem(at(m, &MoeWeights::experts), e), elem(at(mg, &MoeGrads::experts), e));
    }
    expert_ = -1;
    if (c.n_shared_experts > 0)  // the n_shared experts fused into one FFN
      ffn(pm + "shared_experts.", c.n_shared_experts * c.moe_intermediate_size,
          at(m, &MoeWeights::shared_experts), at(mg, &MoeGrads::shared_experts));
    layer_ = -1;
  }

  const ModelConfig& c_;
  const bool training_;
  const TensorVisitor& fn_;
  int64_t layer_ = -1, expert_ = -1;
  bool mtp_ = false;
  std::string tied_to_;
};

}  // namespace

void for_each_tensor(const ModelConfig& c, TensorOrder order, ModelWeights* w, ModelGrads* g,
                     const TensorVisitor& fn) {
  Walk(c, order, fn).model(w, g);
}

std::vector<TensorSpec> model_tensors(const ModelConfig& c, TensorOrder order) {
  std::vector<TensorSpec> out;
  for_each_tensor(c, order, nullptr, nullptr,
                  [&](const TensorSpec& t, const TensorSlots&) { out.push_back(t); });
  return out;
}

}  // namespace seek::model
