#include "train/forward_backward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"
#include "model/mtp.h"
#include "model/ops_backward.h"
#include "model/transformer.h"

namespace seek::train {

using namespace seek::model;

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

// Cross-entropy of head(RMSNorm(h)) against `targets`, in chunks of rows so the [rows, vocab]
// logits stay small. Returns Σ CE over the N rows. With dh: dh = ∂(gscale · Σ CE)/∂h (written),
// and the gain / head gradients accumulate.
double head_ce(const float* h, int64_t N, int64_t H, const std::vector<float>& gain,
               const WeightView& head, const int32_t* targets, float eps, float gscale, float* dh,
               float* g_gain, float* g_head) {
  const int64_t V = head.rows, chunk = 256;
  if (head.dtype != DType::F32) fail("training needs a float32 output head");
  const float* Wh = static_cast<const float*>(head.data);
  std::vector<float> xn(size_t(chunk * H)), logits(size_t(chunk * V)), dxn(size_t(chunk * H));
  double total = 0.0;
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t n = std::min(chunk, N - r0);
    for (int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(h + (r0 + i) * H, gain.data(), xn.data() + i * H, H, eps);
    kernels::gemm_xwt(xn.data(), Wh, logits.data(), n, V, H);  // [n, V]
    for (int64_t i = 0; i < n; ++i) {
      float* l = logits.data() + i * V;
      const int32_t y = targets[r0 + i];
      const float mx = *std::max_element(l, l + V);
      double sum = 0.0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(l[v] - mx));
      total += std::log(sum) + double(mx) - double(l[y]);
      if (!dh) continue;
      // ∂CE/∂logits = softmax − onehot
      const float inv = float(1.0 / sum);
      for (int64_t v = 0; v < V; ++v) l[v] = std::exp(l[v] - mx) * inv * gscale;
      l[y] -= gscale;
    }
    if (!dh) continue;
    kernels::gemm_dyw(logits.data(), Wh, dxn.data(), n, V, H, false);
    if (g_head) kernels::gemm_dytx(logits.data(), xn.data(), g_head, n, V, H);
    for (int64_t i = 0; i < n; ++i)
      rmsnorm_backward(h + (r0 + i) * H, gain.data(), dxn.data() + i * H, dh + (r0 + i) * H,
                       g_gain, H, eps);
  }
  return total;
}

// Sequence-wise balance loss of one MoE layer (V3 eq. 17-20), averaged over the sequences:
//   L = α Σ_i f_i P_i,  f_i = E/(K·n) Σ_t 1[i ∈ TopK(t)],  P_i = (1/n) Σ_t s'_{i,t}
// with s' the scores normalized over all experts. f is a count (no gradient); dscores gets
// ∂(gscale·L)/∂s.
double balance_loss(const ModelConfig& cfg, const Routing& r, const Batch& batch, double alpha,
                    float gscale, float* dscores) {
  const int64_t E = cfg.n_routed_experts, K = r.k;
  const bool sigmoid = cfg.scoring_func == model::ScoringFunc::Sigmoid;
  const double per_seq = 1.0 / double(batch.seqs.size());
  double loss = 0.0;
  std::vector<double> f(static_cast<size_t>(E)), P(static_cast<size_t>(E));
  int64_t t0 = 0;
  for (const SeqChunk& sc : batch.seqs) {
    const int64_t n = sc.n_tokens;
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(P.begin(), P.end(), 0.0);
    for (int64_t t = t0; t < t0 + n; ++t) {
      for (int64_t i = 0; i < K; ++i) f[size_t(r.experts[size_t(t * K + i)])] += 1.0;
      const float* s = r.scores.data() + t * E;
      double sum = 0.0;
      for (int64_t e = 0; e < E; ++e) sum += s[e];
      for (int64_t e = 0; e < E; ++e) P[size_t(e)] += (sigmoid ? s[e] / sum : s[e]) / double(n);
    }
    for (int64_t e = 0; e < E; ++e) f[size_t(e)] *= double(E) / double(K * n);
    for (int64_t e = 0; e < E; ++e) loss += alpha * per_seq * f[size_t(e)] * P[size_t(e)];
    if (dscores) {
      // ∂L/∂s'_{e,t} = α·f_e/n per sequence; through s' = s/Σs for sigmoid scores.
      for (int64_t t = t0; t < t0 + n; ++t) {
        const float* s = r.scores.data() + t * E;
        float* d = dscores + t * E;
        const double c = alpha * per_seq / double(n) * gscale;
        if (!sigmoid) {
          for (int64_t e = 0; e < E; ++e) d[e] += float(c * f[size_t(e)]);
          continue;
        }
        double sum = 0.0, dot = 0.0;
        for (int64_t e = 0; e < E; ++e) sum += s[e];
        for (int64_t e = 0; e < E; ++e) dot += f[size_t(e)] * s[e] / sum;
        for (int64_t e = 0; e < E; ++e) d[e] += float(c * (f[size_t(e)] - dot) / sum);
      }
    }
    t0 += n;
  }
  return loss;
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

}  // namespace

double max_violation(const std::vector<int64_t>& load) {
  if (load.empty()) return 0.0;
  double sum = 0.0;
  int64_t mx = 0;
  for (int64_t l : load) {
    sum += double(l);
    mx = std::max(mx, l);
  }
  return sum > 0 ? double(mx) / (sum / double(load.size())) - 1.0 : 0.0;
}

StepResult forward_backward(const ModelConfig& cfg, const ModelWeights& w, ModelGrads& g,
                            const TokenBatch& tb, const ObjectiveOptions& opts) {
  const int64_t B = tb.B, S = tb.S, T = B * S, H = cfg.hidden_size, L = cfg.num_hidden_layers;
  const int64_t D = int64_t(w.mtp.size());
  const float eps = float(cfg.rms_norm_eps);
  const bool bwd = opts.backward;
  if (int64_t(tb.tokens.size()) != B * (S + 1)) fail("batch: {} tokens for {}×{}", tb.tokens.size(), B, S + 1);
  if (S < D + 2) fail("sequence length {} is too short for {} MTP modules", S, D);
  auto tok = [&](int64_t b, int64_t i) { return tb.tokens[size_t(b * (S + 1) + i)]; };

  ModelConfig cache_cfg = cfg;
  cache_cfg.num_hidden_layers = L + D;
  KVCache cache(cache_cfg, int(B), S);
  ForwardOptions fo;
  // The tape records the naive attention form; forwards without a tape (recompute, validation)
  // must take the same form so that recomputed activations are bit-identical.
  fo.attention = ForwardOptions::Attention::Naive;

  StepResult res;
  // ---- main model forward ----
  Batch main = whole_sequences(B, S);
  std::vector<int32_t> targets(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i) {
      main.tokens.push_back(tok(b, i));
      targets[size_t(b * S + i)] = tok(b, i + 1);
    }
  const RopeTables rope(cfg, positions(B, S));
  std::vector<float> h(size_t(T * H));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = main.tokens[size_t(t)];
    if (id < 0 || id >= cfg.vocab_size) fail("token id {} is outside the vocabulary (size {})", id, cfg.vocab_size);
    kernels::dequantize_row(w.embed_tokens, id, h.data() + t * H);
  }
  std::vector<BlockTape> tapes(static_cast<size_t>(L));
  std::vector<std::vector<float>> inputs(static_cast<size_t>(L));
  std::vector<Routing> routing(static_cast<size_t>(L));
  size_t held = 0;
  for (int64_t l = 0; l < L; ++l) {
    const bool keep = bwd && !opts.recompute;
    if (bwd && opts.recompute) {
      inputs[size_t(l)].assign(h.begin(), h.end());
      held += vec_bytes(inputs[size_t(l)]);
    }
    block_forward(cfg, w.layers[size_t(l)], l, h.data(), main, rope, cache, fo,
                  &routing[size_t(l)], keep ? &tapes[size_t(l)] : nullptr);
    if (keep) held += tape_bytes(tapes[size_t(l)]);
    if (w.layers[size_t(l)].is_moe) {
      res.expert_load.push_back(loads(cfg, routing[size_t(l)]));
      res.moe_layers.push_back(l);
      if (opts.balance_alpha > 0)
        res.balance += balance_loss(cfg, routing[size_t(l)], main, opts.balance_alpha, 0.f, nullptr);
    }
  }

  // ---- main head + cross-entropy ----
  std::vector<float> dh(bwd ? size_t(T * H) : 0);
  const double ce_sum = head_ce(h.data(), T, H, w.norm, w.lm_head, targets.data(), eps,
                                opts.grad_scale / float(T), bwd ? dh.data() : nullptr,
                                bwd ? g.norm : nullptr, bwd ? g.lm_head : nullptr);
  res.ce = ce_sum / double(T);
  res.tokens = T;

  // ---- MTP modules: forward each depth on the previous depth's hidden states ----
  std::vector<Batch> mb(static_cast<size_t>(D));
  std::vector<RopeTables> mrope;
  std::vector<MtpTape> mtapes(static_cast<size_t>(D));
  std::vector<std::vector<float>> mh(static_cast<size_t>(D)), mdh(static_cast<size_t>(D));
  const std::vector<float>* prev = &h;
  int64_t prev_len = S;
  double mtp_total = 0.0;
  for (int64_t k = 0; k < D; ++k) {
    const int64_t n = S - k - 1, N = B * n;
    mb[size_t(k)] = whole_sequences(B, n);
    std::vector<int32_t> tg(static_cast<size_t>(N));
    std::vector<float> hp(size_t(N * H));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < n; ++i) {
        mb[size_t(k)].tokens.push_back(tok(b, i + k + 1));
        tg[size_t(b * n + i)] = tok(b, i + k + 2);
        std::copy_n(prev->data() + (b * prev_len + i) * H, H, hp.data() + (b * n + i) * H);
      }
    mrope.emplace_back(cfg, positions(B, n));
    mh[size_t(k)].resize(size_t(N * H));
    Routing r;
    mtp_forward(cfg, w.mtp[size_t(k)], k, hp.data(), mb[size_t(k)], mrope.back(), cache, fo,
                mh[size_t(k)].data(), &r, bwd ? &mtapes[size_t(k)] : nullptr);
    if (bwd) held += tape_bytes(mtapes[size_t(k)].block);
    if (w.mtp[size_t(k)].block.is_moe) {
      res.expert_load.push_back(loads(cfg, r));
      res.moe_layers.push_back(L + k);
    }
    const float wk = float(opts.mtp_lambda / double(D));
    if (bwd) mdh[size_t(k)].resize(size_t(N * H));
    const double ce_k = head_ce(mh[size_t(k)].data(), N, H, w.mtp[size_t(k)].shared_head_norm,
                                w.mtp[size_t(k)].shared_head_head, tg.data(), eps,
                                opts.grad_scale * wk / float(N), bwd ? mdh[size_t(k)].data() : nullptr,
                                bwd ? g.mtp[size_t(k)].shared_head_norm : nullptr,
                                bwd ? g.lm_head : nullptr) / double(N);
    res.ce_mtp.push_back(ce_k);
    mtp_total += wk * ce_k;
    prev = &mh[size_t(k)];
    prev_len = n;
  }
  res.loss = res.ce + mtp_total + res.balance;
  res.tape_bytes = held;
  if (!bwd) return res;

  // ---- MTP backward, deepest first; each hands its gradient to the previous depth ----
  for (int64_t k = D - 1; k >= 0; --k) {
    const int64_t n = S - k - 1;
    std::vector<float> dprev(size_t(B * n * H));
    mtp_backward(cfg, w.mtp[size_t(k)], mb[size_t(k)], mrope[size_t(k)], mtapes[size_t(k)],
                 mdh[size_t(k)].data(), dprev.data(), g.mtp[size_t(k)], g.embed_tokens);
    std::vector<float>& target = k == 0 ? dh : mdh[size_t(k - 1)];
    const int64_t tlen = k == 0 ? S : n + 1;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < n; ++i) {
        float* d = target.data() + (b * tlen + i) * H;
        const float* s = dprev.data() + (b * n + i) * H;
        for (int64_t j = 0; j < H; ++j) d[j] += s[j];
      }
  }

  // ---- main blocks backward ----
  std::vector<float> dscores;
  for (int64_t l = L - 1; l >= 0; --l) {
    BlockTape local;
    const BlockTape* tape = &tapes[size_t(l)];
    if (opts.recompute) {
      std::vector<float> hr = std::move(inputs[size_t(l)]);
      block_forward(cfg, w.layers[size_t(l)], l, hr.data(), main, rope, cache, fo, nullptr, &local);
      tape = &local;
    }
    const float* ds = nullptr;
    if (w.layers[size_t(l)].is_moe && opts.balance_alpha > 0) {
      dscores.assign(size_t(T * cfg.n_routed_experts), 0.0f);
      balance_loss(cfg, tape->moe.routing, main, opts.balance_alpha, opts.grad_scale, dscores.data());
      ds = dscores.data();
    }
    block_backward(cfg, w.layers[size_t(l)], main, rope, *tape, dh.data(), g.layers[size_t(l)], ds);
    tapes[size_t(l)] = BlockTape{};
  }
  // ---- embedding: scatter-add ----
  if (g.embed_tokens)
    for (int64_t t = 0; t < T; ++t) {
      float* ge = g.embed_tokens + int64_t(main.tokens[size_t(t)]) * H;
      const float* d = dh.data() + t * H;
      for (int64_t j = 0; j < H; ++j) ge[j] += d[j];
    }
  return res;
}

}  // namespace seek::train
