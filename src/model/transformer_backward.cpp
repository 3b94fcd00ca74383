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
                    const float* dscores, kernels::Precision prec) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> dxn(size_t(T * H));
  // h_out = h_mid + FFN(RMSNorm(h_mid)); the saved inputs decoded into buf when kept in FP8
  std::vector<float> buf;
  if (lw.is_moe)
    moe_backward(cfg, lw.moe, tape.xn2.values(buf), T, tape.moe, dh, dscores, dxn.data(), g.moe, prec);
  else
    ffn_backward(lw.mlp, tape.xn2.values(buf), T, H, tape.mlp, dh, dxn.data(), g.mlp, false, prec);
  for (int64_t t = 0; t < T; ++t) {
    float* d = dxn.data() + t * H;
    rmsnorm_backward(tape.h_mid.data() + t * H, lw.post_attention_layernorm.data(), d, d,
                     g.post_attention_layernorm, H, eps);
    for (int64_t j = 0; j < H; ++j) dh[t * H + j] += d[j];
  }
  // h_mid = h_in + MLA(RMSNorm(h_in))
  mla_backward(cfg, lw.attn, tape.xn1.values(buf), batch, rope, tape.attn, dh, dxn.data(), g.attn, prec);
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

void check_batch(const TokenBatch& tb, const ObjectiveOptions& opts);  // (below)

size_t vec_bytes(const std::vector<float>& v) { return v.size() * sizeof(float); }

size_t tape_bytes(const BlockTape& t) {
  size_t b = vec_bytes(t.h_in) + t.xn1.bytes() + vec_bytes(t.h_mid) + t.xn2.bytes();
  const MlaTape& a = t.attn;
  for (auto* v : {&a.qa, &a.q, &a.kv, &a.rows, &a.kvf, &a.probs, &a.attn}) b += vec_bytes(*v);
  b += a.qa_n.bytes();
  b += t.mlp.g.bytes() + t.mlp.u.bytes() + t.moe.shared.g.bytes() + t.moe.shared.u.bytes();
  for (const auto& e : t.moe.experts) b += e.g.bytes() + e.u.bytes();
  for (const auto& x : t.moe.expert_in) b += x.bytes();
  for (const auto& e : t.moe.expert_out) b += vec_bytes(e);
  return b;
}

std::vector<int64_t> loads(const ModelConfig& cfg, const Routing& r) {
  std::vector<int64_t> l(static_cast<size_t>(cfg.n_routed_experts), 0);
  for (int32_t e : r.experts) ++l[size_t(e)];
  return l;
}

// Sequences of the given lengths as a training batch (whole sequences, no cache; slot = index).
Batch whole_sequences(const std::vector<int64_t>& lengths) {
  Batch b;
  int64_t total = 0;
  for (int64_t n : lengths) total += n;
  b.tokens.reserve(size_t(total));
  for (size_t s = 0; s < lengths.size(); ++s) b.seqs.push_back({int(s), 0, lengths[s], true});
  return b;
}

// Positions restart at 0 in every sequence.
std::vector<int64_t> positions(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> p;
  for (int64_t n : lengths)
    for (int64_t i = 0; i < n; ++i) p.push_back(i);
  return p;
}

// MTP module k: each sequence i with n_i − k − 1 ≥ 1 positions (shorter ones sit it out).
struct MtpStep {
  std::vector<int64_t> seq;        // which sequences take part
  std::vector<int64_t> len;        // their positions n_i − k − 1
  Batch batch;                     // look-ahead tokens t[j+k+1]
  std::vector<int32_t> targets;    // t[j+k+2]
  std::vector<float> weights;      // their main weights (empty: all 1)
  RopeTables rope;
  MtpTape tape;
  std::vector<float> h, dh;        // [N, H] output hidden states and their gradient
  MtpStep(const ModelConfig& cfg, std::vector<int64_t> s, std::vector<int64_t> l)
      : seq(std::move(s)), len(std::move(l)), batch(whole_sequences(len)), rope(cfg, positions(len)) {}
};

}  // namespace

// One micro-batch through main layers [first, last) (the whole model: [0, L)) over whole
// sequences (no KV cache), keeping what backward needs.
class StageStep {
 public:
  StageStep(const ModelConfig& cfg, const ModelWeights& w, TokenBatch tb_in,
            ObjectiveOptions opts_in, int64_t first, int64_t last)
      : cfg_(cfg), w_(w), opts_(std::move(opts_in)), tb_(std::move(tb_in)),
        n_seq_(int64_t(tb_.lengths.size())), T_(tb_.targets()), H_(cfg.hidden_size),
        L_(cfg.num_hidden_layers), first_(first), last_(last),
        D_(opts_.token_objective || opts_.hidden_objective || last != L_ ? 0 : int64_t(w.mtp.size())),
        main_(whole_sequences(tb_.lengths)), rope_(cfg, positions(tb_.lengths)) {
    check_batch(tb_, opts_);
    if (first < 0 || first >= last || last > L_)
      fail("pipeline stage: layers [{}, {}) of a {}-layer model", first, last, L_);
    const ObjectiveOptions& opts = opts_;
    const TokenBatch& tb = tb_;
    // The tape records the naive attention form; forwards without a tape (recompute,
    // validation) must take the same form so that recomputed activations are bit-identical.
    fo_.attention = ForwardOptions::Attention::Naive;
    fo_.precision = opts.precision;
    fo_.experts = opts.experts;
    if (opts.precision == kernels::Precision::BF16) {
      bf16_weights_ = with_bf16_matrices(w, bf16_store_);
      wf_ = &bf16_weights_;
    }
    // V3 keeps the output head in higher precision than FP8.
    head_precision_ = opts.precision == kernels::Precision::FP8 ? kernels::Precision::BF16
                                                                : opts.precision;
    targets_.resize(size_t(T_));
    tok_off_.resize(size_t(n_seq_));
    row_off_.resize(size_t(n_seq_));
    for (int64_t s = 0, tok = 0, row = 0; s < n_seq_; ++s) {
      tok_off_[size_t(s)] = tok;
      row_off_[size_t(s)] = row;
      const int64_t n = tb.lengths[size_t(s)];
      for (int64_t i = 0; i < n; ++i) {
        main_.tokens.push_back(tok_at(s, i));
        targets_[size_t(row + i)] = tok_at(s, i + 1);
      }
      tok += n + 1;
      row += n;
    }
  }

  bool last_stage() const { return last_ == L_; }
  int64_t tokens() const { return T_; }

  // h_in: the previous stage's output (null on the first stage). Returns this stage's output
  // (empty on the last stage, which runs the objective and its heads' backward).
  const std::vector<float>& forward(ModelGrads& g, const float* h_in) {
    forward_main(h_in);
    if (last_stage()) {
      if (opts_.backward) dh_.resize(size_t(T_ * H_));
      if (opts_.hidden_objective)
        res_.loss = hidden_head(g);
      else
        res_.loss = main_head(g) + forward_mtp(g);
      h_.clear();
      h_.shrink_to_fit();
    }
    res_.loss += res_.balance;
    res_.tape_bytes = held_;
    return h_;
  }

  // dh_out: the next stage's gradient of this stage's output (null on the last stage). Returns
  // the gradient of this stage's input (empty on the first stage: it went into the embedding).
  const std::vector<float>& backward(ModelGrads& g, const float* dh_out) {
    if (!opts_.backward) fail("pipeline stage: backward of a forward-only pass");
    if (last_stage()) {
      backward_mtp(g);
    } else {
      if (!dh_out) fail("pipeline stage: layers [{}, {}) need the next stage's gradient", first_, last_);
      dh_.assign(dh_out, dh_out + T_ * H_);
      h_.clear();
      h_.shrink_to_fit();
    }
    backward_main(g);
    if (first_ == 0) {
      embed_backward(main_.tokens.data(), T_, H_, dh_.data(), g.embed_tokens);
      dh_.clear();
      dh_.shrink_to_fit();
    }
    return dh_;
  }

  StepResult result() { return std::move(res_); }

 private:
  int32_t tok_at(int64_t s, int64_t i) const { return tb_.tokens[size_t(tok_off_[size_t(s)] + i)]; }
  float eps() const { return float(cfg_.rms_norm_eps); }
  const float* main_weights() const { return tb_.weights.empty() ? nullptr : tb_.weights.data(); }

  // The coefficient of Σ w·CE for a head over `count` rows of weight sum `wsum`: gradients of
  // grad_scale · scale · Σ w·CE. Without weights or a step total it is grad_scale / count in
  // float, as pretraining has always computed it.
  double normalizer(double wsum, int64_t count) const {
    if (opts_.weight_total > 0) return opts_.weight_total;
    return tb_.weights.empty() ? double(count) : wsum;
  }
  float head_grad(double norm, int64_t count, float extra = 1.0f) const {
    if (opts_.weight_total <= 0 && tb_.weights.empty())
      return opts_.grad_scale * extra / float(count);
    return norm > 0 ? float(double(opts_.grad_scale) * extra / norm) : 0.0f;
  }

  // The main head: weighted cross-entropy, or the token objective. Returns its loss term.
  double main_head(ModelGrads& g) {
    const bool bwd = opts_.backward;
    const float* wts = main_weights();
    double wsum = 0.0;
    for (int64_t r = 0; r < T_; ++r) {
      const double wr = wts ? wts[r] : 1.0;
      wsum += wr;
      res_.tokens += wr != 0.0;
    }
    if (opts_.token_objective) {
      HeadTerm term;
      term.objective = &opts_.token_objective;
      term.nll_sum = 0.0;
      const double total = head_loss(h_.data(), T_, H_, w_.norm, w_.lm_head, targets_.data(), term,
                                     eps(), opts_.grad_scale, bwd ? dh_.data() : nullptr,
                                     bwd ? g.norm : nullptr, bwd ? g.lm_head : nullptr,
                                     head_precision_);
      res_.ce = T_ > 0 ? term.nll_sum / double(T_) : 0.0;
      return total;
    }
    const double norm = normalizer(wsum, T_);
    HeadTerm term;
    term.weights = wts;
    const double ce_sum = head_loss(h_.data(), T_, H_, w_.norm, w_.lm_head, targets_.data(), term,
                                    eps(), head_grad(norm, T_), bwd ? dh_.data() : nullptr,
                                    bwd ? g.norm : nullptr, bwd ? g.lm_head : nullptr,
                                    head_precision_);
    res_.ce = norm > 0 ? ce_sum / norm : 0.0;
    return res_.ce;
  }

  // The reward model's head: the objective sees the final-normed hidden states.
  double hidden_head(ModelGrads& g) {
    const bool bwd = opts_.backward;
    std::vector<float> xn(size_t(T_ * H_)), dxn;
    for (int64_t t = 0; t < T_; ++t)
      kernels::rmsnorm(h_.data() + t * H_, w_.norm.data(), xn.data() + t * H_, H_, eps());
    if (bwd) dxn.assign(size_t(T_ * H_), 0.0f);
    const double loss = opts_.hidden_objective(xn.data(), T_, H_, bwd ? dxn.data() : nullptr);
    if (bwd)
      for (int64_t t = 0; t < T_; ++t) {
        float* d = dxn.data() + t * H_;
        for (int64_t j = 0; j < H_; ++j) d[j] *= opts_.grad_scale;
        rmsnorm_backward(h_.data() + t * H_, w_.norm.data(), d, dh_.data() + t * H_, g.norm, H_,
                         eps());
      }
    return loss;
  }

  // h = Blocks(Emb(inputs)) (a later stage: Blocks(h_in)), keeping each block's tape (or,
  // recomputing, its input).
  void forward_main(const float* h_in) {
    const bool bwd = opts_.backward;
    if (first_ == 0) {
      h_.resize(size_t(T_ * H_));
      embed(w_.embed_tokens, main_.tokens.data(), T_, h_.data());
    } else {
      if (!h_in) fail("pipeline stage: layers [{}, {}) need the previous stage's output", first_, last_);
      h_.assign(h_in, h_in + T_ * H_);
    }
    tapes_.resize(size_t(L_));
    inputs_.resize(size_t(L_));
    std::vector<Routing> routing(static_cast<size_t>(L_));
    for (int64_t l = first_; l < last_; ++l) {
      const bool keep = bwd && !opts_.recompute;
      if (bwd && opts_.recompute) {
        inputs_[size_t(l)].assign(h_.begin(), h_.end());
        held_ += vec_bytes(inputs_[size_t(l)]);
      }
      block_forward(cfg_, wf_->layers[size_t(l)], l, h_.data(), main_, rope_, nullptr, fo_,
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
    const float* wts = main_weights();
    double total = 0.0;
    mtp_.reserve(size_t(D_));
    for (int64_t k = 0; k < D_; ++k) {
      std::vector<int64_t> seq, len;
      for (int64_t s = 0; s < n_seq_; ++s)
        if (const int64_t n = tb_.lengths[size_t(s)] - k - 1; n >= 1) seq.push_back(s), len.push_back(n);
      int64_t N = 0;
      for (int64_t n : len) N += n;
      MtpStep& m = mtp_.emplace_back(cfg_, std::move(seq), std::move(len));
      m.targets.resize(size_t(N));
      std::vector<float> hp(size_t(N * H_));
      double wsum = 0.0;
      for (size_t c = 0, r = 0; c < m.seq.size(); ++c) {
        const int64_t s = m.seq[c];
        for (int64_t j = 0; j < m.len[c]; ++j, ++r) {
          m.batch.tokens.push_back(tok_at(s, j + k + 1));
          m.targets[r] = tok_at(s, j + k + 2);
          if (wts) m.weights.push_back(wts[row_off_[size_t(s)] + j + k + 1]);
          wsum += wts ? m.weights.back() : 1.0;
          std::copy_n(prev_row(k, c, j), H_, hp.data() + int64_t(r) * H_);
        }
      }
      m.h.resize(size_t(N * H_));
      Routing r;
      if (N > 0)
        mtp_forward(cfg_, wf_->mtp[size_t(k)], k, hp.data(), m.batch, m.rope, nullptr, fo_, m.h.data(),
                    &r, bwd ? &m.tape : nullptr);
      if (bwd) held_ += tape_bytes(m.tape.block);
      if (w_.mtp[size_t(k)].block.is_moe) {
        res_.expert_load.push_back(N > 0 ? loads(cfg_, r) : std::vector<int64_t>(size_t(cfg_.n_routed_experts)));
        res_.moe_layers.push_back(L_ + k);
      }
      const float wk = float(opts_.mtp_lambda / double(D_));
      if (bwd) m.dh.assign(size_t(N * H_), 0.0f);
      const double norm = normalizer(wsum, N);
      HeadTerm term;
      term.weights = m.weights.empty() ? nullptr : m.weights.data();
      const double ce_sum = head_loss(
          m.h.data(), N, H_, w_.mtp[size_t(k)].shared_head_norm, w_.mtp[size_t(k)].shared_head_head,
          m.targets.data(), term, eps(), head_grad(norm, N, wk), bwd ? m.dh.data() : nullptr,
          bwd ? g.mtp[size_t(k)].shared_head_norm : nullptr, bwd ? g.lm_head : nullptr,
          head_precision_);
      const double ce_k = norm > 0 ? ce_sum / norm : 0.0;
      res_.ce_mtp.push_back(ce_k);
      total += wk * ce_k;
    }
    return total;
  }

  // The hidden state module k reads at position j of its c-th sequence: the previous depth's
  // (the main model's for k = 0) at the same position of the same sequence.
  float* prev_row(int64_t k, size_t c, int64_t j) {
    if (k == 0) return h_.data() + (row_off_[size_t(mtp_[0].seq[c])] + j) * H_;
    // Module k's sequences are a prefix-closed subset of module k−1's (n − k − 1 ≥ 1 implies
    // n − k ≥ 1), in the same order: find the same sequence there.
    const MtpStep& cur = mtp_[size_t(k)];
    MtpStep& prev = mtp_[size_t(k - 1)];
    return prev.h.data() + (offset_in(prev, cur.seq[c]) + j) * H_;
  }
  float* prev_grad_row(int64_t k, size_t c, int64_t j) {
    if (k == 0) return dh_.data() + (row_off_[size_t(mtp_[0].seq[c])] + j) * H_;
    MtpStep& prev = mtp_[size_t(k - 1)];
    return prev.dh.data() + (offset_in(prev, mtp_[size_t(k)].seq[c]) + j) * H_;
  }
  static int64_t offset_in(const MtpStep& m, int64_t s) {
    int64_t off = 0;
    for (size_t c = 0; c < m.seq.size() && m.seq[c] != s; ++c) off += m.len[c];
    return off;
  }

  // Deepest module first; each hands its gradient to the previous depth (the main model's last
  // hidden states for k = 0).
  void backward_mtp(ModelGrads& g) {
    for (int64_t k = D_ - 1; k >= 0; --k) {
      MtpStep& m = mtp_[size_t(k)];
      const int64_t N = int64_t(m.batch.tokens.size());
      if (N == 0) continue;
      std::vector<float> dprev(size_t(N * H_));
      mtp_backward(cfg_, w_.mtp[size_t(k)], m.batch, m.rope, m.tape, m.dh.data(), dprev.data(),
                   g.mtp[size_t(k)], g.embed_tokens, opts_.precision);
      for (size_t c = 0, r = 0; c < m.seq.size(); ++c)
        for (int64_t j = 0; j < m.len[c]; ++j, ++r) {
          float* d = prev_grad_row(k, c, j);
          const float* s = dprev.data() + int64_t(r) * H_;
          for (int64_t i = 0; i < H_; ++i) d[i] += s[i];
        }
    }
  }

  void backward_main(ModelGrads& g) {
    std::vector<float> dscores;
    for (int64_t l = last_ - 1; l >= first_; --l) {
      BlockTape local;
      const BlockTape* tape = &tapes_[size_t(l)];
      if (opts_.recompute) {
        std::vector<float> hr = std::move(inputs_[size_t(l)]);
        block_forward(cfg_, wf_->layers[size_t(l)], l, hr.data(), main_, rope_, nullptr, fo_,
                      nullptr, &local);
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
                     g.layers[size_t(l)], ds, opts_.precision);
      tapes_[size_t(l)] = BlockTape{};
    }
  }

  const ModelConfig& cfg_;
  const ModelWeights w_;           // float32 master weights (backward, embeddings, heads): views
  const ObjectiveOptions opts_;
  std::vector<uint16_t> bf16_store_;
  ModelWeights bf16_weights_;      // BF16 precision: the forward's linear layers in bf16
  const ModelWeights* wf_ = &w_;   // the forward's weights
  kernels::Precision head_precision_ = kernels::Precision::F32;
  const TokenBatch tb_;
  const int64_t n_seq_, T_, H_, L_, first_, last_, D_;
  ForwardOptions fo_;
  Batch main_;                     // every sequence's inputs
  std::vector<int32_t> targets_;   // their targets
  std::vector<int64_t> tok_off_, row_off_;  // per sequence: first token, first target row
  RopeTables rope_;
  std::vector<float> h_, dh_;      // [T, H] last hidden states (before the norm), their gradient
  std::vector<BlockTape> tapes_;   // per main block (kept unless recomputing)
  std::vector<std::vector<float>> inputs_;  // per main block's input (recomputing)
  std::vector<MtpStep> mtp_;
  StepResult res_;
  size_t held_ = 0;
};

TokenBatch TokenBatch::rows(int64_t B, int64_t S, std::vector<int32_t> tokens) {
  if (int64_t(tokens.size()) != B * (S + 1)) fail("batch: {} tokens for {}×{}", tokens.size(), B, S + 1);
  TokenBatch b;
  b.tokens = std::move(tokens);
  b.lengths.assign(size_t(B), S);
  return b;
}

TokenBatch TokenBatch::sequences(size_t a, size_t b) const {
  if (a > b || b > lengths.size()) fail("batch: sequences [{}, {}) of {}", a, b, lengths.size());
  int64_t t0 = 0, w0 = 0;
  for (size_t i = 0; i < a; ++i) t0 += lengths[i] + 1, w0 += lengths[i];
  int64_t t1 = t0, w1 = w0;
  for (size_t i = a; i < b; ++i) t1 += lengths[i] + 1, w1 += lengths[i];
  TokenBatch s;
  s.tokens.assign(tokens.begin() + t0, tokens.begin() + t1);
  s.lengths.assign(lengths.begin() + ptrdiff_t(a), lengths.begin() + ptrdiff_t(b));
  if (!weights.empty()) s.weights.assign(weights.begin() + w0, weights.begin() + w1);
  return s;
}

int64_t TokenBatch::targets() const {
  int64_t n = 0;
  for (int64_t l : lengths) n += l;
  return n;
}

StepResult forward_backward(const ModelConfig& cfg, const ModelWeights& w, ModelGrads& g,
                            const TokenBatch& tb, const ObjectiveOptions& opts) {
  StageStep step(cfg, w, tb, opts, 0, cfg.num_hidden_layers);
  step.forward(g, nullptr);
  if (opts.backward) step.backward(g, nullptr);
  return step.result();
}

namespace {

void check_batch(const TokenBatch& tb, const ObjectiveOptions& opts) {
  int64_t need = 0;
  for (int64_t n : tb.lengths) {
    if (n < 1) fail("batch: a sequence of {} targets (each needs at least 1)", n);
    need += n + 1;
  }
  if (int64_t(tb.tokens.size()) != need)
    fail("batch: {} tokens for {} sequences that need {}", tb.tokens.size(), tb.lengths.size(), need);
  if (!tb.weights.empty() && int64_t(tb.weights.size()) != tb.targets())
    fail("batch: {} weights for {} targets", tb.weights.size(), tb.targets());
  if (opts.token_objective && opts.hidden_objective)
    fail("objective: a token objective and a hidden-state objective at once");
}

}  // namespace

StagePass::StagePass(const ModelConfig& cfg, const ModelWeights& w, TokenBatch batch,
                     const ObjectiveOptions& opts, int64_t first_layer, int64_t last_layer)
    : step_(std::make_unique<StageStep>(cfg, w, std::move(batch), opts, first_layer, last_layer)) {}
StagePass::~StagePass() = default;
StagePass::StagePass(StagePass&&) noexcept = default;
StagePass& StagePass::operator=(StagePass&&) noexcept = default;
const std::vector<float>& StagePass::forward(ModelGrads& g, const float* h_in) { return step_->forward(g, h_in); }
const std::vector<float>& StagePass::backward(ModelGrads& g, const float* dh_out) { return step_->backward(g, dh_out); }
StepResult StagePass::result() { return step_->result(); }
int64_t StagePass::tokens() const { return step_->tokens(); }

}  // namespace seek::model
