// Backward of one decoder block (see block_forward), and the whole model's training step: the
// forward over whole sequences keeping what backward needs, the objective (loss.h), and the
// backward of main blocks, head, MTP chain and embedding. The residual stream passes the
// gradient through unchanged, each branch adds its own.
#include <vector>

#include "core/error.h"
#include "kernels/ops.h"
#include "model/loss.h"
#include "model/mtp.h"
#include "model/transformer.h"

namespace seek::model {

using kernels::rmsnorm_backward;

void block_backward(const ModelConfig& cfg, const LayerWeights& lw, const Batch& batch,
                    const RopeTables& rope, const BlockTape& tape, float* dh, LayerGrads& g,
                    const float* dscores) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> dxn(size_t(T * H));
  // h_out = h_mid + FFN(RMSNorm(h_mid))
  if (lw.is_moe)
    moe_backward(cfg, lw.moe, tape.xn2.data(), T, tape.moe, dh, dscores, dxn.data(), g.moe);
  else
    ffn_backward(lw.mlp, tape.xn2.data(), T, H, tape.mlp, dh, dxn.data(), g.mlp);
  for (int64_t t = 0; t < T; ++t) {
    float* d = dxn.data() + t * H;
    rmsnorm_backward(tape.h_mid.data() + t * H, lw.post_attention_layernorm.data(), d, d,
                     g.post_attention_layernorm, H, eps);
    for (int64_t j = 0; j < H; ++j) dh[t * H + j] += d[j];
  }
  // h_mid = h_in + MLA(RMSNorm(h_in))
  mla_backward(cfg, lw.attn, tape.xn1.data(), batch, rope, tape.attn, dh, dxn.data(), g.attn);
  for (int64_t t = 0; t < T; ++t) {
    float* d = dxn.data() + t * H;
    rmsnorm_backward(tape.h_in.data() + t * H, lw.input_layernorm.data(), d, d,
                     g.input_layernorm, H, eps);
    for (int64_t j = 0; j < H; ++j) dh[t * H + j] += d[j];
  }
}

void embed_backward(const int32_t* ids, int64_t T, int64_t H, const float* dh, float* g_table) {
  if (!g_table) return;
  for (int64_t t = 0; t < T; ++t) {
    float* ge = g_table + int64_t(ids[t]) * H;
    const float* d = dh + t * H;
    for (int64_t j = 0; j < H; ++j) ge[j] += d[j];
  }
}

namespace {

size_t vec_bytes(const std::vector<float>& v) { return v.size() * sizeof(float); }

size_t tape_bytes(const BlockTape& t) {
  size_t b = vec_bytes(t.h_in) + vec_bytes(t.xn1) + vec_bytes(t.h_mid) + vec_bytes(t.xn2);
  const MlaTape& a = t.attn;
  for (auto* v : {&a.qa, &a.qa_n, &a.q, &a.kv, &a.rows, &a.kvf, &a.probs, &a.attn}) b += vec_bytes(*v);
  b += vec_bytes(t.mlp.g) + vec_bytes(t.mlp.u) + vec_bytes(t.moe.shared.g) + vec_bytes(t.moe.shared.u);
  for (const auto& e : t.moe.experts) b += vec_bytes(e.g) + vec_bytes(e.u);
  for (const auto& e : t.moe.expert_out) b += vec_bytes(e);
  return b;
}

std::vector<int64_t> loads(const ModelConfig& cfg, const Routing& r) {
  std::vector<int64_t> l(static_cast<size_t>(cfg.n_routed_experts), 0);
  for (int32_t e : r.experts) ++l[size_t(e)];
  return l;
}

Batch whole_sequences(int64_t B, int64_t n) {
  Batch b;
  b.tokens.reserve(size_t(B * n));
  for (int64_t s = 0; s < B; ++s) b.seqs.push_back({int(s), 0, n, true});
  return b;
}

std::vector<int64_t> positions(int64_t B, int64_t n) {
  std::vector<int64_t> p;
  for (int64_t s = 0; s < B; ++s)
    for (int64_t i = 0; i < n; ++i) p.push_back(i);
  return p;
}

// MTP module k over B sequences of n = S - k - 1 positions: its inputs, targets and tape.
struct MtpStep {
  Batch batch;                     // look-ahead tokens t[i+k+1]
  std::vector<int32_t> targets;    // t[i+k+2]
  RopeTables rope;
  MtpTape tape;
  std::vector<float> h, dh;        // [B·n, H] output hidden states and their gradient
  MtpStep(const ModelConfig& cfg, int64_t B, int64_t n) : rope(cfg, positions(B, n)) {}
};

// One training step: the model over B whole sequences (no KV cache) and what backward needs.
class Step {
 public:
  Step(const ModelConfig& cfg, const ModelWeights& w, const TokenBatch& tb,
       const ObjectiveOptions& opts)
      : cfg_(cfg), w_(w), opts_(opts), tb_(tb), B_(tb.B), S_(tb.S), T_(B_ * S_),
        H_(cfg.hidden_size), L_(cfg.num_hidden_layers), D_(int64_t(w.mtp.size())),
        main_(whole_sequences(B_, S_)), rope_(cfg, positions(B_, S_)) {
    // The tape records the naive attention form; forwards without a tape (recompute,
    // validation) must take the same form so that recomputed activations are bit-identical.
    fo_.attention = ForwardOptions::Attention::Naive;
    targets_.resize(size_t(T_));
    for (int64_t b = 0; b < B_; ++b)
      for (int64_t i = 0; i < S_; ++i) {
        main_.tokens.push_back(tok(b, i));
        targets_[size_t(b * S_ + i)] = tok(b, i + 1);
      }
  }

  StepResult run(ModelGrads& g) {
    const bool bwd = opts_.backward;
    forward_main();
    // Main head + cross-entropy (its backward runs here, chunk by chunk).
    if (bwd) dh_.resize(size_t(T_ * H_));
    const double ce_sum = head_cross_entropy(
        h_.data(), T_, H_, w_.norm, w_.lm_head, targets_.data(), eps(), opts_.grad_scale / float(T_),
        bwd ? dh_.data() : nullptr, bwd ? g.norm : nullptr, bwd ? g.lm_head : nullptr);
    res_.ce = ce_sum / double(T_);
    res_.tokens = T_;
    const double mtp_total = forward_mtp(g);
    res_.loss = res_.ce + mtp_total + res_.balance;
    res_.tape_bytes = held_;
    if (!bwd) return std::move(res_);
    backward_mtp(g);
    backward_main(g);
    embed_backward(main_.tokens.data(), T_, H_, dh_.data(), g.embed_tokens);
    return std::move(res_);
  }

 private:
  int32_t tok(int64_t b, int64_t i) const { return tb_.tokens[size_t(b * (S_ + 1) + i)]; }
  float eps() const { return float(cfg_.rms_norm_eps); }

  // h = Blocks(Emb(t[0..S-1])), keeping each block's tape (or, recomputing, its input).
  void forward_main() {
    const bool bwd = opts_.backward;
    h_.resize(size_t(T_ * H_));
    embed(w_.embed_tokens, main_.tokens.data(), T_, h_.data());
    tapes_.resize(size_t(L_));
    inputs_.resize(size_t(L_));
    std::vector<Routing> routing(static_cast<size_t>(L_));
    for (int64_t l = 0; l < L_; ++l) {
      const bool keep = bwd && !opts_.recompute;
      if (bwd && opts_.recompute) {
        inputs_[size_t(l)].assign(h_.begin(), h_.end());
        held_ += vec_bytes(inputs_[size_t(l)]);
      }
      block_forward(cfg_, w_.layers[size_t(l)], l, h_.data(), main_, rope_, nullptr, fo_,
                    &routing[size_t(l)], keep ? &tapes_[size_t(l)] : nullptr);
      if (keep) held_ += tape_bytes(tapes_[size_t(l)]);
      if (w_.layers[size_t(l)].is_moe) {
        res_.expert_load.push_back(loads(cfg_, routing[size_t(l)]));
        res_.moe_layers.push_back(l);
        if (opts_.balance_alpha > 0)
          res_.balance += balance_loss(cfg_, routing[size_t(l)], main_, opts_.balance_alpha, 0.f, nullptr);
      }
    }
  }

  // MTP modules, each depth on the previous depth's hidden states, with their head CE (and its
  // backward). Returns Σ_k (λ/D)·CE_k.
  double forward_mtp(ModelGrads& g) {
    const bool bwd = opts_.backward;
    const std::vector<float>* prev = &h_;
    int64_t prev_len = S_;
    double total = 0.0;
    mtp_.reserve(size_t(D_));
    for (int64_t k = 0; k < D_; ++k) {
      const int64_t n = S_ - k - 1, N = B_ * n;
      MtpStep& m = mtp_.emplace_back(cfg_, B_, n);
      m.batch = whole_sequences(B_, n);
      m.targets.resize(size_t(N));
      std::vector<float> hp(size_t(N * H_));
      for (int64_t b = 0; b < B_; ++b)
        for (int64_t i = 0; i < n; ++i) {
          m.batch.tokens.push_back(tok(b, i + k + 1));
          m.targets[size_t(b * n + i)] = tok(b, i + k + 2);
          std::copy_n(prev->data() + (b * prev_len + i) * H_, H_, hp.data() + (b * n + i) * H_);
        }
      m.h.resize(size_t(N * H_));
      Routing r;
      mtp_forward(cfg_, w_.mtp[size_t(k)], k, hp.data(), m.batch, m.rope, nullptr, fo_, m.h.data(),
                  &r, bwd ? &m.tape : nullptr);
      if (bwd) held_ += tape_bytes(m.tape.block);
      if (w_.mtp[size_t(k)].block.is_moe) {
        res_.expert_load.push_back(loads(cfg_, r));
        res_.moe_layers.push_back(L_ + k);
      }
      const float wk = float(opts_.mtp_lambda / double(D_));
      if (bwd) m.dh.resize(size_t(N * H_));
      const double ce_k = head_cross_entropy(
          m.h.data(), N, H_, w_.mtp[size_t(k)].shared_head_norm, w_.mtp[size_t(k)].shared_head_head,
          m.targets.data(), eps(), opts_.grad_scale * wk / float(N), bwd ? m.dh.data() : nullptr,
          bwd ? g.mtp[size_t(k)].shared_head_norm : nullptr, bwd ? g.lm_head : nullptr) / double(N);
      res_.ce_mtp.push_back(ce_k);
      total += wk * ce_k;
      prev = &m.h;
      prev_len = n;
    }
    return total;
  }

  // Deepest module first; each hands its gradient to the previous depth (the main model's last
  // hidden states for k = 0).
  void backward_mtp(ModelGrads& g) {
    for (int64_t k = D_ - 1; k >= 0; --k) {
      const int64_t n = S_ - k - 1;
      MtpStep& m = mtp_[size_t(k)];
      std::vector<float> dprev(size_t(B_ * n * H_));
      mtp_backward(cfg_, w_.mtp[size_t(k)], m.batch, m.rope, m.tape, m.dh.data(), dprev.data(),
                   g.mtp[size_t(k)], g.embed_tokens);
      std::vector<float>& target = k == 0 ? dh_ : mtp_[size_t(k - 1)].dh;
      const int64_t tlen = k == 0 ? S_ : n + 1;
      for (int64_t b = 0; b < B_; ++b)
        for (int64_t i = 0; i < n; ++i) {
          float* d = target.data() + (b * tlen + i) * H_;
          const float* s = dprev.data() + (b * n + i) * H_;
          for (int64_t j = 0; j < H_; ++j) d[j] += s[j];
        }
    }
  }

  void backward_main(ModelGrads& g) {
    std::vector<float> dscores;
    for (int64_t l = L_ - 1; l >= 0; --l) {
      BlockTape local;
      const BlockTape* tape = &tapes_[size_t(l)];
      if (opts_.recompute) {
        std::vector<float> hr = std::move(inputs_[size_t(l)]);
        block_forward(cfg_, w_.layers[size_t(l)], l, hr.data(), main_, rope_, nullptr, fo_, nullptr,
                      &local);
        tape = &local;
      }
      const float* ds = nullptr;
      if (w_.layers[size_t(l)].is_moe && opts_.balance_alpha > 0) {
        dscores.assign(size_t(T_ * cfg_.n_routed_experts), 0.0f);
        balance_loss(cfg_, tape->moe.routing, main_, opts_.balance_alpha, opts_.grad_scale,
                     dscores.data());
        ds = dscores.data();
      }
      block_backward(cfg_, w_.layers[size_t(l)], main_, rope_, *tape, dh_.data(),
                     g.layers[size_t(l)], ds);
      tapes_[size_t(l)] = BlockTape{};
    }
  }

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  const ObjectiveOptions& opts_;
  const TokenBatch& tb_;
  const int64_t B_, S_, T_, H_, L_, D_;
  ForwardOptions fo_;
  Batch main_;                     // inputs t[0..S-1] of every sequence
  std::vector<int32_t> targets_;   // t[1..S]
  RopeTables rope_;
  std::vector<float> h_, dh_;      // [T, H] last hidden states (before the norm), their gradient
  std::vector<BlockTape> tapes_;   // per main block (kept unless recomputing)
  std::vector<std::vector<float>> inputs_;  // per main block's input (recomputing)
  std::vector<MtpStep> mtp_;
  StepResult res_;
  size_t held_ = 0;
};

}  // namespace

StepResult forward_backward(const ModelConfig& cfg, const ModelWeights& w, ModelGrads& g,
                            const TokenBatch& tb, const ObjectiveOptions& opts) {
  const int64_t D = int64_t(w.mtp.size());
  if (int64_t(tb.tokens.size()) != tb.B * (tb.S + 1))
    fail("batch: {} tokens for {}×{}", tb.tokens.size(), tb.B, tb.S + 1);
  if (tb.S < D + 2) fail("sequence length {} is too short for {} MTP modules", tb.S, D);
  return Step(cfg, w, tb, opts).run(g);
}

}  // namespace seek::model
