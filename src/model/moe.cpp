#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/ops.h"

namespace seek::model {

using kernels::Precision;

void ffn_forward(const FfnWeights& w, const float* x, int64_t T, int64_t H, float* out,
                 Precision prec, FfnTape* tape, const std::function<void()>& progress) {
  const auto poll = [&] { if (progress) progress(); };
  const int64_t I = w.gate_proj.rows;
  std::vector<float> g(size_t(T * I)), u(size_t(T * I));
  kernels::matmul(x, T, H, w.gate_proj, g.data(), I, prec);
  poll();
  kernels::matmul(x, T, H, w.up_proj, u.data(), I, prec);
  poll();
  if (tape) {
    tape->g.keep(g, I, prec == Precision::FP8);
    tape->u.keep(u, I, prec == Precision::FP8);
  }
  kernels::silu_mul(g.data(), u.data(), g.data(), T * I);
  kernels::matmul(g.data(), T, I, w.down_proj, out, H, prec);
  poll();
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

namespace {

// Runs expert e0 + j over its n_j = off[j+1] − off[j] rows for every j, writing its outputs to
// rows off[j].. of y [off.back(), H]. Experts run in parallel, each whole on one thread (its GEMMs
// single-threaded): one fork per layer instead of three per expert, and every thread streams its
// own experts' weights. Experts go to threads longest first onto the least loaded thread; an
// expert costs its weight reads (~kFixed tokens' worth of compute) plus its rows. `rows(j, buf)`
// gives expert j's input rows [n_j, H], contiguous (gathered into buf, or in place).
void run_experts(const MoeWeights& w, int64_t e0, const std::vector<int64_t>& off, int64_t H,
                 const std::function<const float*(int64_t, std::vector<float>&)>& rows, float* y,
                 Precision prec, std::vector<FfnTape>* tapes) {
  const int64_t n_exp = int64_t(off.size()) - 1;
  const auto n_of = [&](int64_t j) { return off[size_t(j) + 1] - off[size_t(j)]; };
  std::vector<int64_t> order;
  for (int64_t j = 0; j < n_exp; ++j)
    if (n_of(j) > 0) order.push_back(j);
  constexpr int64_t kFixed = 16;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return n_of(a) > n_of(b); });
  const int nt = int(std::min<int64_t>(max_threads(), int64_t(order.size())));
  std::vector<std::vector<int64_t>> bins(size_t(std::max(nt, 1)));  // each thread's experts
  std::vector<int64_t> load(bins.size(), 0);
  for (int64_t j : order) {
    const auto t = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    bins[t].push_back(j);
    load[t] += kFixed + n_of(j);
  }
  parallel_for(int64_t(bins.size()), nt, [&](int64_t b) {
    std::vector<float> buf;
    for (int64_t j : bins[size_t(b)]) {
      const float* x = rows(j, buf);
      ffn_forward(w.experts[size_t(e0 + j)], x, n_of(j), H, y + off[size_t(j)] * H, prec,
                  tapes ? &(*tapes)[size_t(j)] : nullptr);
    }
  });
}

}  // namespace

void moe_forward(const ModelConfig& cfg, const MoeWeights& w, const float* xn, int64_t T,
                 float* out, Precision prec, Routing* routing, MoeTape* tape,
                 const ExpertExchange* ep) {
  const int64_t H = cfg.hidden_size, E = cfg.n_routed_experts;
  // Router in float32 whatever the activation precision: gating is kept in high precision.
  // (A rank with no tokens, an expert rank at inference, has no router: it only exchanges.)
  std::vector<float> logits(size_t(T * E));
  if (T > 0) kernels::matmul(xn, T, H, w.gate, logits.data(), E, Precision::F32);
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
    tape->ep = ep && ep->size() > 1 ? ep : nullptr;
  }
  const auto gather_tokens = [&](int64_t e, std::vector<float>& buf) -> const float* {
    const auto& toks = assigned[size_t(e)];
    buf.resize(toks.size() * size_t(H));
    for (size_t i = 0; i < toks.size(); ++i)
      std::copy_n(xn + int64_t(toks[i].first) * H, H, buf.data() + int64_t(i) * H);
    return buf.data();
  };

  // Shared experts over every token (added last, below); under expert parallelism they are
  // computed during the dispatch.
  std::vector<float> shared;
  bool shared_done = false;
  const auto run_shared = [&](const std::function<void()>& progress) {
    if (cfg.n_shared_experts == 0 || !(T > 0 || tape)) return;
    shared.resize(size_t(T * H));
    ffn_forward(w.shared_experts, xn, T, H, shared.data(), prec, tape ? &tape->shared : nullptr,
                progress);
    shared_done = true;
  };

  // ys [T·k, H]: Expert_e(x) of this rank's tokens, expert after expert (rows first[e]..).
  std::vector<float> ys(size_t(first[size_t(E)] * H));
  if (!ep || ep->size() == 1) {
    std::vector<FfnTape>* tapes = nullptr;
    if (tape) tapes = &(tape->experts = std::vector<FfnTape>(size_t(E)));
    run_experts(w, 0, first, H, gather_tokens, ys.data(), prec, tapes);
  } else {
    const int n = ep->size();
    if (E % n != 0) fail("expert parallelism: {} routed experts do not divide among {} ranks", E, n);
    const int64_t per = E / n;
    const ExpertRange mine = owned_experts(E, ep->rank(), n);
    // This rank's rows in expert order are rank after rank (each holds a contiguous range).
    std::vector<float> xs(ys.size());
    for (int64_t e = 0; e < E; ++e) {
      std::vector<float> buf;
      gather_tokens(e, buf);
      std::copy(buf.begin(), buf.end(), xs.begin() + first[size_t(e)] * H);
    }
    std::vector<int64_t> send_counts(static_cast<size_t>(E)), recv_counts(static_cast<size_t>(E));  // [n, per]
    for (int64_t e = 0; e < E; ++e) send_counts[size_t(e)] = int64_t(assigned[size_t(e)].size());
    ep->alltoall(send_counts, recv_counts, per);
    std::vector<int64_t> send_rows(static_cast<size_t>(n)), recv_rows(static_cast<size_t>(n));
    for (int q = 0; q < n; ++q)
      for (int64_t j = 0; j < per; ++j) {
        send_rows[size_t(q)] += send_counts[size_t(q * per + j)];
        recv_rows[size_t(q)] += recv_counts[size_t(q * per + j)];
      }
    int64_t n_recv = 0;
    for (int64_t c : recv_rows) n_recv += c;
    std::vector<float> xr(size_t(n_recv * H));
    // The shared experts need no other rank's rows: they run while the rows travel (V3 §3.2.2).
    ep->alltoallv_overlapped(xs.data(), send_rows, xr.data(), recv_rows, H,
                             [&](const ExpertExchange::Progress& progress) { run_shared(progress); });
    // Received rows are source-major ([src][expert][row]); each expert runs over its rows from
    // every source in source order ([expert][src][row]): the order of one process's tokens when
    // the ranks hold consecutive shares of a batch.
    std::vector<int64_t> off(size_t(per) + 1, 0);
    for (int64_t j = 0; j < per; ++j) {
      off[size_t(j) + 1] = off[size_t(j)];
      for (int q = 0; q < n; ++q) off[size_t(j) + 1] += recv_counts[size_t(q * per + j)];
    }
    std::vector<int64_t> src_at(size_t(n * per));  // row of (src, expert) block in xr
    for (int64_t i = 0, o = 0; i < n * per; ++i) src_at[size_t(i)] = o, o += recv_counts[size_t(i)];
    const auto to_expert_major = [&](const float* src_major, float* expert_major) {
      for (int64_t j = 0, o = 0; j < per; ++j)
        for (int q = 0; q < n; ++q) {
          const int64_t c = recv_counts[size_t(q * per + j)];
          std::copy_n(src_major + src_at[size_t(q * per + j)] * H, c * H, expert_major + o * H);
          o += c;
        }
    };
    std::vector<float> xe(xr.size()), ye(xr.size());
    to_expert_major(xr.data(), xe.data());
    std::vector<FfnTape>* tapes = nullptr;
    if (tape) tapes = &(tape->experts = std::vector<FfnTape>(size_t(per)));
    run_experts(w, mine.begin, off, H,
                [&](int64_t j, std::vector<float>&) { return xe.data() + off[size_t(j)] * H; },
                ye.data(), prec, tapes);
    // Back to source-major for the return trip.
    for (int64_t j = 0, o = 0; j < per; ++j)
      for (int q = 0; q < n; ++q) {
        const int64_t c = recv_counts[size_t(q * per + j)];
        std::copy_n(ye.data() + o * H, c * H, xr.data() + src_at[size_t(q * per + j)] * H);
        o += c;
      }
    ep->alltoallv(xr.data(), recv_rows, ys.data(), send_rows, H);
    if (tape) {
      tape->expert_in.assign(size_t(per), {});
      for (int64_t j = 0; j < per; ++j)
        tape->expert_in[size_t(j)].keep(xe.data() + off[size_t(j)] * H, off[size_t(j) + 1] - off[size_t(j)], H,
                                        prec == Precision::FP8);
      tape->recv_counts = std::move(recv_counts);
    }
  }
  if (tape) {
    tape->expert_out.assign(size_t(E), {});
    for (int64_t e = 0; e < E; ++e)
      tape->expert_out[size_t(e)].assign(ys.begin() + first[size_t(e)] * H, ys.begin() + first[size_t(e) + 1] * H);
  }

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
  if (!shared_done) run_shared({});
  if (shared_done)
    for (int64_t i = 0; i < T * H; ++i) out[i] += shared[size_t(i)];
  if (tape) tape->routing = r;
  if (routing) *routing = std::move(r);
}

}  // namespace seek::model
