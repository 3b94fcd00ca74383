// Backward of the SwiGLU FFN and of DeepSeekMoE. Forward, for reference:
//   ffn(x) = down(silu(gate(x)) ⊙ up(x))
//   s = σ(x·Gᵀ) or softmax(x·Gᵀ);  chosen K experts (bias-steered, not differentiated)
//   g_i = rsf · s_{e_i} / Σ_j s_{e_j}  (norm_topk_prob)  or  rsf · s_{e_i}
//   out = Σ_i g_i · ffn_{e_i}(x) + shared(x)
#include <vector>

#include "core/error.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"
#include "model/moe.h"
#include "model/weight_grad.h"

namespace seek::model {

namespace {

const float* f32(const WeightView& v, const char* name) {
  if (v.dtype != DType::F32 || v.ld != v.cols) fail("moe_backward: {} must be a dense float32 weight", name);
  return static_cast<const float*>(v.data);
}

}  // namespace

void ffn_backward(const FfnWeights& w, const float* x, int64_t T, int64_t H, const FfnTape& tape,
                  const float* dout, float* dx, FfnGrads& g, bool accumulate_dx,
                  kernels::Precision prec, const std::function<void()>& progress) {
  const auto poll = [&] { if (progress) progress(); };
  const int64_t I = w.gate_proj.rows;
  std::vector<float> a(size_t(T * I)), da(size_t(T * I)), dg(size_t(T * I)), du(size_t(T * I));
  // out = a · downᵀ with a = silu(g) ⊙ u
  kernels::gemm_dyw(dout, f32(w.down_proj, "down_proj"), da.data(), T, H, I, false, prec);
  poll();
  std::vector<float> gbuf, ubuf;
  const float* gate = tape.g.values(gbuf);
  const float* up = tape.u.values(ubuf);
  if (g.down_proj) {
    kernels::silu_mul(gate, up, a.data(), T * I);
    weight_grad(dout, a.data(), g.down_proj, T, H, I, prec);
    poll();
  }
  kernels::silu_mul_backward(gate, up, da.data(), dg.data(), du.data(), T * I);
  kernels::gemm_dyw(dg.data(), f32(w.gate_proj, "gate_proj"), dx, T, I, H, accumulate_dx, prec);
  poll();
  kernels::gemm_dyw(du.data(), f32(w.up_proj, "up_proj"), dx, T, I, H, true, prec);
  poll();
  if (g.gate_proj) weight_grad(dg.data(), x, g.gate_proj, T, I, H, prec);
  poll();
  if (g.up_proj) weight_grad(du.data(), x, g.up_proj, T, I, H, prec);
  poll();
}

void moe_backward(const ModelConfig& cfg, const MoeWeights& w, const float* xn, int64_t T,
                  const MoeTape& tape, const float* dout, const float* dscores, float* dx,
                  MoeGrads& g, kernels::Precision prec) {
  const int64_t H = cfg.hidden_size, E = cfg.n_routed_experts;
  const Routing& r = tape.routing;
  const int64_t K = r.k;
  const float rsf = float(cfg.routed_scaling_factor);

  // Shared experts see every token: their backward initializes dx (under expert parallelism
  // while the routed experts' output gradients travel).
  bool shared_done = false;
  const auto run_shared = [&](const std::function<void()>& progress) {
    if (cfg.n_shared_experts > 0)
      ffn_backward(w.shared_experts, xn, T, H, tape.shared, dout, dx, g.shared_experts, false, prec,
                   progress);
    else
      std::fill_n(dx, T * H, 0.0f);
    shared_done = true;
  };

  // Routed experts: dy_e = g · dout for each assigned token; dg = dout · Expert_e(x). dys holds
  // the dy rows expert after expert (the forward's ys layout), dxs the input gradients back.
  std::vector<float> dgate(size_t(T * K), 0.0f);  // [T, K] gradient of the gate values
  std::vector<int64_t> first(size_t(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) first[size_t(e) + 1] = first[size_t(e)] + int64_t(tape.assigned[size_t(e)].size());
  std::vector<float> dys(size_t(first[size_t(E)] * H)), dxs(dys.size());
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = tape.assigned[size_t(e)];
    const std::vector<float>& ye = tape.expert_out[size_t(e)];
    for (size_t i = 0; i < toks.size(); ++i) {
      const auto [t, slot] = toks[i];
      const float gv = r.weights[size_t(t * K + slot)];
      const float* d = dout + int64_t(t) * H;
      const float* y = ye.data() + int64_t(i) * H;
      float* dy = dys.data() + (first[size_t(e)] + int64_t(i)) * H;
      double dot = 0.0;
      for (int64_t j = 0; j < H; ++j) {
        dy[j] = gv * d[j];
        dot += double(d[j]) * double(y[j]);
      }
      dgate[size_t(t * K + slot)] = float(dot);
    }
  }
  // Expert e's backward over its n rows: x [n, H], dy [n, H] → dx [n, H] and its weight gradients.
  std::vector<float> xe;
  const auto expert_backward = [&](int64_t e, const FfnTape& ft, const float* x, const float* dy,
                                   int64_t n, float* dxe) {
    FfnGrads* ge = g.experts.empty() ? nullptr : &g.experts[size_t(e)];
    FfnGrads none;
    ffn_backward(w.experts[size_t(e)], x, n, H, ft, dy, dxe, ge ? *ge : none, false, prec);
  };
  if (!tape.ep) {
    run_shared({});
    for (int64_t e = 0; e < E; ++e) {
      const auto& toks = tape.assigned[size_t(e)];
      const int64_t n = int64_t(toks.size());
      if (n == 0) continue;
      xe.resize(size_t(n * H));
      for (int64_t i = 0; i < n; ++i) std::copy_n(xn + int64_t(toks[size_t(i)].first) * H, H, xe.data() + i * H);
      const int64_t o = first[size_t(e)] * H;
      expert_backward(e, tape.experts[size_t(e)], xe.data(), dys.data() + o, n, dxs.data() + o);
    }
  } else {
    // Expert parallelism: dy rows to the experts' ranks, their input gradients back (the
    // forward's exchanges in reverse, with the forward's counts).
    const ExpertExchange& ep = *tape.ep;
    const int n = ep.size();
    const int64_t per = E / n;
    const ExpertRange mine = owned_experts(E, ep.rank(), n);
    const std::vector<int64_t>& rc = tape.recv_counts;  // [n, per]
    std::vector<int64_t> send_rows(static_cast<size_t>(n)), recv_rows(static_cast<size_t>(n)), src_at(static_cast<size_t>(n * per));
    int64_t n_recv = 0;
    for (int q = 0; q < n; ++q)
      for (int64_t j = 0; j < per; ++j) {
        send_rows[size_t(q)] += first[size_t(q * per + j) + 1] - first[size_t(q * per + j)];
        recv_rows[size_t(q)] += rc[size_t(q * per + j)];
        src_at[size_t(q * per + j)] = n_recv;
        n_recv += rc[size_t(q * per + j)];
      }
    std::vector<float> dyr(size_t(n_recv * H)), dy, dx;
    ep.alltoallv_overlapped(dys.data(), send_rows, dyr.data(), recv_rows, H,
                            [&](const ExpertExchange::Progress& progress) { run_shared(progress); });
    for (int64_t j = 0; j < per; ++j) {
      const int64_t rows = int64_t(tape.expert_in[size_t(j)].size()) / H;
      std::vector<float> xbuf;
      if (rows == 0) continue;
      dy.resize(size_t(rows * H));
      dx.resize(size_t(rows * H));
      int64_t o = 0;
      for (int q = 0; q < n; ++q) {  // [src][row] of expert j, as its forward ran
        const int64_t c = rc[size_t(q * per + j)];
        std::copy_n(dyr.data() + src_at[size_t(q * per + j)] * H, c * H, dy.data() + o * H);
        o += c;
      }
      expert_backward(mine.begin + j, tape.experts[size_t(j)], tape.expert_in[size_t(j)].values(xbuf),
                      dy.data(), rows, dx.data());
      o = 0;
      for (int q = 0; q < n; ++q) {  // back into the source-major layout
        const int64_t c = rc[size_t(q * per + j)];
        std::copy_n(dx.data() + o * H, c * H, dyr.data() + src_at[size_t(q * per + j)] * H);
        o += c;
      }
    }
    ep.alltoallv(dyr.data(), recv_rows, dxs.data(), send_rows, H);
  }
  if (!shared_done) run_shared({});  // (an exchange that never ran its overlap)
  // dx[t] += the input gradients of its experts, expert after expert.
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = tape.assigned[size_t(e)];
    for (size_t i = 0; i < toks.size(); ++i) {
      float* o = dx + int64_t(toks[i].first) * H;
      const float* d = dxs.data() + (first[size_t(e)] + int64_t(i)) * H;
      for (int64_t j = 0; j < H; ++j) o[j] += d[j];
    }
  }

  // Gate values → scores → router logits.
  std::vector<float> dlogits(size_t(T * E));
  std::vector<float> ds(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* s = r.scores.data() + t * E;
    const int32_t* ch = r.experts.data() + t * K;
    const float* dg = dgate.data() + t * K;
    for (int64_t e = 0; e < E; ++e) ds[size_t(e)] = dscores ? dscores[t * E + e] : 0.0f;
    if (cfg.norm_topk_prob) {
      // g_i = rsf · s_i / S:  ∂/∂s_j = rsf · (δ_ij / S − s_i / S²)
      double S = 1e-20, dot = 0.0;
      for (int64_t i = 0; i < K; ++i) S += s[ch[i]];
      for (int64_t i = 0; i < K; ++i) dot += double(dg[i]) * double(s[ch[i]]);
      for (int64_t i = 0; i < K; ++i)
        ds[size_t(ch[i])] += float(rsf * (double(dg[i]) / S - dot / (S * S)));
    } else {
      for (int64_t i = 0; i < K; ++i) ds[size_t(ch[i])] += rsf * dg[i];
    }
    float* dl = dlogits.data() + t * E;
    if (cfg.scoring_func == ScoringFunc::Sigmoid) {
      for (int64_t e = 0; e < E; ++e) dl[e] = ds[size_t(e)] * s[e] * (1.0f - s[e]);
    } else {
      kernels::softmax_backward(s, ds.data(), dl, E);
    }
  }
  kernels::gemm_dyw(dlogits.data(), f32(w.gate, "gate"), dx, T, E, H, true);
  if (g.gate) weight_grad(dlogits.data(), xn, g.gate, T, E, H);
}

}  // namespace seek::model
