#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/threads.h"
#include "kernels/ops.h"

namespace seek::model {

using kernels::Precision;

void ffn_forward(const FfnWeights& w, const float* x, int64_t T, int64_t H, float* out,
                 Precision prec, FfnTape* tape) {
  const int64_t I = w.gate_proj.rows;
  std::vector<float> g(size_t(T * I)), u(size_t(T * I));
  kernels::matmul(x, T, H, w.gate_proj, g.data(), I, prec);
  kernels::matmul(x, T, H, w.up_proj, u.data(), I, prec);
  if (tape) {
    tape->g = g;
    tape->u = u;
  }
  kernels::silu_mul(g.data(), u.data(), g.data(), T * I);
  kernels::matmul(g.data(), T, I, w.down_proj, out, H, prec);
}

namespace {

// Indices of the k largest values (descending; ties keep the lower index first).
void top_k(const float* v, int64_t n, int64_t k, int32_t* idx) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::copy_n(order.begin(), k, idx);
}

}  // namespace

Routing moe_route(const ModelConfig& cfg, const float* logits, int64_t T,
                  const std::vector<float>& bias) {
  const int64_t E = cfg.n_routed_experts, k = cfg.num_experts_per_tok;
  const int64_t G = cfg.n_group, per_group = E / G;
  const bool noaux = cfg.topk_method == TopkMethod::NoauxTc;
  const bool grouped = cfg.topk_method != TopkMethod::Greedy && G > 1;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  Routing r;
  r.k = k;
  r.experts.resize(size_t(T * k));
  r.weights.resize(size_t(T * k));
  r.scores.resize(size_t(T * E));
  std::vector<float> sel(static_cast<size_t>(E)), group_score(static_cast<size_t>(G));
  std::vector<int32_t> keep(size_t(cfg.topk_group)), top2(2);
  for (int64_t t = 0; t < T; ++t) {
    float* s = r.scores.data() + t * E;
    std::copy_n(logits + t * E, E, s);
    if (cfg.scoring_func == ScoringFunc::Sigmoid)
      for (int64_t e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + std::exp(-s[e]));
    else
      kernels::softmax(s, E);
    // The correction bias steers which experts are chosen, never how much they weigh.
    for (int64_t e = 0; e < E; ++e) sel[size_t(e)] = s[e] + (noaux ? bias[size_t(e)] : 0.0f);
    if (grouped) {
      // Group score: sum of the two best (noaux_tc) or the best (group_limited_greedy).
      for (int64_t g = 0; g < G; ++g) {
        const float* gs = sel.data() + g * per_group;
        if (noaux) {
          top_k(gs, per_group, 2, top2.data());
          group_score[size_t(g)] = gs[top2[0]] + gs[top2[1]];
        } else {
          group_score[size_t(g)] = *std::max_element(gs, gs + per_group);
        }
      }
      top_k(group_score.data(), G, cfg.topk_group, keep.data());
      std::vector<bool> allowed(static_cast<size_t>(G), false);
      for (int32_t g : keep) allowed[size_t(g)] = true;
      for (int64_t e = 0; e < E; ++e)
        if (!allowed[size_t(e / per_group)]) sel[size_t(e)] = neg_inf;
    }
    int32_t* chosen = r.experts.data() + t * k;
    float* gw = r.weights.data() + t * k;
    top_k(sel.data(), E, k, chosen);
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) sum += (gw[i] = s[chosen[i]]);
    const float norm = cfg.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (int64_t i = 0; i < k; ++i) gw[i] *= norm * float(cfg.routed_scaling_factor);
  }
  return r;
}

void moe_forward(const ModelConfig& cfg, const MoeWeights& w, const float* xn, int64_t T,
                 float* out, Precision prec, Routing* routing, MoeTape* tape) {
  const int64_t H = cfg.hidden_size, E = cfg.n_routed_experts;
  // Router in float32 whatever the activation precision: gating is kept in high precision.
  std::vector<float> logits(size_t(T * E));
  kernels::matmul(xn, T, H, w.gate, logits.data(), E, Precision::F32);
  Routing r = moe_route(cfg, logits.data(), T, w.e_score_correction_bias);

  // Dispatch: group tokens by expert so each expert runs once over its tokens. Slot
  // (t, i) of the routing gets row first[e] + rank of t among e's tokens in `ys`.
  std::vector<std::vector<std::pair<int32_t, int32_t>>> assigned(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < r.k; ++i)
      assigned[size_t(r.experts[size_t(t * r.k + i)])].push_back({int32_t(t), int32_t(i)});
  std::vector<int64_t> first(size_t(E) + 1, 0), row_of(size_t(T * r.k));
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = assigned[size_t(e)];
    first[size_t(e) + 1] = first[size_t(e)] + int64_t(toks.size());
    for (size_t j = 0; j < toks.size(); ++j)
      row_of[size_t(toks[j].first * r.k + toks[j].second)] = first[size_t(e)] + int64_t(j);
  }
  if (tape) {
    tape->assigned = assigned;
    tape->experts.assign(size_t(E), {});
    tape->expert_out.assign(size_t(E), {});
  }

  // Experts run in parallel, each whole on one thread (its GEMMs single-threaded): one fork per
  // layer instead of three per expert, and every thread streams its own experts' weights. Experts
  // go to threads longest first onto the least loaded thread; an expert costs its weight reads
  // (~kFixed tokens' worth of compute) plus its tokens.
  std::vector<float> ys(size_t(first[size_t(E)] * H));
  std::vector<int64_t> order;
  for (int64_t e = 0; e < E; ++e)
    if (!assigned[size_t(e)].empty()) order.push_back(e);
  constexpr int64_t kFixed = 16;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return assigned[size_t(a)].size() > assigned[size_t(b)].size();
  });
  const int nt = int(std::min<int64_t>(max_threads(), int64_t(order.size())));
  std::vector<std::vector<int64_t>> bins(size_t(std::max(nt, 1)));  // each thread's experts
  std::vector<int64_t> load(bins.size(), 0);
  for (int64_t e : order) {
    const auto t = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    bins[t].push_back(e);
    load[t] += kFixed + int64_t(assigned[size_t(e)].size());
  }
  parallel_for(int64_t(bins.size()), nt, [&](int64_t b) {
    std::vector<float> xe;
    for (int64_t e : bins[size_t(b)]) {
      const auto& toks = assigned[size_t(e)];
      const int64_t n = int64_t(toks.size());
      xe.resize(size_t(n * H));
      for (int64_t i = 0; i < n; ++i)
        std::copy_n(xn + int64_t(toks[size_t(i)].first) * H, H, xe.data() + i * H);
      float* ye = ys.data() + first[size_t(e)] * H;
      ffn_forward(w.experts[size_t(e)], xe.data(), n, H, ye, prec,
                  tape ? &tape->experts[size_t(e)] : nullptr);
      if (tape) tape->expert_out[size_t(e)].assign(ye, ye + n * H);
    }
  });

  // out[t] = Σ_i g_{t,i} · Expert_{e_{t,i}}(x_t), summed in routing order.
  const int nc = int(std::min<int64_t>(max_threads(), T));
  parallel_run(nc, [&](int c, int ncs) {
    const auto [t0, t1] = split_range(T, c, ncs);
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out + t * H;
      std::fill_n(o, H, 0.0f);
      for (int64_t i = 0; i < r.k; ++i) {
        const float g = r.weights[size_t(t * r.k + i)];
        const float* y = ys.data() + row_of[size_t(t * r.k + i)] * H;
        for (int64_t j = 0; j < H; ++j) o[j] += g * y[j];
      }
    }
  });
  if (cfg.n_shared_experts > 0) {
    std::vector<float> shared(size_t(T * H));
    ffn_forward(w.shared_experts, xn, T, H, shared.data(), prec, tape ? &tape->shared : nullptr);
    for (int64_t i = 0; i < T * H; ++i) out[i] += shared[size_t(i)];
  }
  if (tape) tape->routing = r;
  if (routing) *routing = std::move(r);
}

}  // namespace seek::model
