// Backward of MLA (naive attention form; the absorbed form computes the same function). Shapes
// as in mla.cpp: T tokens, nh heads, d_h nope / d_R rope / d_v value dims, d_c = kv_lora_rank,
// W = d_c + d_R. Forward, for reference:
//   q = q_b(RMSNorm(q_a(x)))  (or q_proj(x));  q_pe ← RoPE(q_pe)
//   [c | k_R] = kv_a(x);  ĉ = RMSNorm(c);  k_R ← RoPE(k_R)
//   [k_nope | v]_h = kv_b(ĉ)
//   P_h = softmax(scale·(q_nope,h·k_nopeᵀ + q_pe,h·k_Rᵀ) + causal mask);  o_h = P_h·v_h
//   out = o_proj(o)
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"
#include "model/mla.h"
#include "model/weight_grad.h"

namespace seek::model {

using kernels::gemm;
using kernels::Trans;
using kernels::rmsnorm_backward;
using kernels::rope_interleaved_backward;

namespace {

const float* f32(const WeightView& v, const char* name) {
  if (v.dtype != DType::F32 || v.ld != v.cols) fail("mla_backward: {} must be a dense float32 weight", name);
  return static_cast<const float*>(v.data);
}

}  // namespace

void mla_backward(const ModelConfig& cfg, const MlaWeights& w, const float* xn,
                  const Batch& batch, const RopeTables& rope, const MlaTape& tape,
                  const float* dout, float* dxn, MlaGrads& g, kernels::Precision prec) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const int64_t nh = cfg.num_attention_heads, dh = cfg.qk_nope_head_dim,
                dr = cfg.qk_rope_head_dim, dv = cfg.v_head_dim, dc = cfg.kv_lora_rank;
  const int64_t qd = dh + dr, W = dc + dr, kvw = nh * (dh + dv);
  const float eps = float(cfg.rms_norm_eps), scale = float(cfg.softmax_scale());

  // out = attn · o_projᵀ                                                          [T, H]
  const float* w_o = f32(w.o_proj, "o_proj");
  std::vector<float> d_attn(size_t(T * nh * dv));  // [T, nh·d_v]
  kernels::gemm_dyw(dout, w_o, d_attn.data(), T, H, nh * dv, false, prec);
  if (g.o_proj) weight_grad(dout, tape.attn.data(), g.o_proj, T, H, nh * dv, prec);

  // Attention, per chunk and head.
  std::vector<float> dq(size_t(T * nh * qd));    // [T, nh, d_h + d_R]
  std::vector<float> dkvf(size_t(T * kvw), 0.f);  // [T, nh, d_h + d_v]
  std::vector<float> drows(size_t(T * W), 0.f);   // [T, d_c + d_R]
  std::vector<float> dp, ds;
  int64_t t0 = 0, probs_off = 0;
  for (const SeqChunk& sc : batch.seqs) {
    const int64_t n = sc.n_tokens;
    dp.resize(size_t(n * n));
    ds.resize(size_t(n * n));
    for (int64_t h = 0; h < nh; ++h) {
      const float* P = tape.probs.data() + probs_off + h * n * n;              // [n, n]
      const float* dA = d_attn.data() + t0 * nh * dv + h * dv;                 // [n, d_v] ld nh·d_v
      const float* K = tape.kvf.data() + t0 * kvw + h * (dh + dv);             // [n, d_h] ld kvw
      const float* V = K + dh;                                                 // [n, d_v] ld kvw
      const float* kR = tape.rows.data() + t0 * W + dc;                        // [n, d_R] ld W
      const float* qn = tape.q.data() + t0 * nh * qd + h * qd;                 // [n, d_h] ld nh·qd
      float* dK = dkvf.data() + t0 * kvw + h * (dh + dv);
      // dP = dA · Vᵀ;  dV += Pᵀ · dA
      gemm(Trans::No, Trans::Yes, n, n, dv, dA, nh * dv, V, kvw, dp.data(), n, false);
      gemm(Trans::Yes, Trans::No, n, dv, n, P, n, dA, nh * dv, dK + dh, kvw, true);
      // Softmax: dS = P ⊙ (dP − Σ_j P·dP) · scale (masked entries have P = 0)
      parallel_ranges(n, std::max<int64_t>(1, kElementwiseGrain / n), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          kernels::softmax_backward_causal(P + i * n, dp.data() + i * n, ds.data() + i * n, n,
                                           i + 1, scale);
      });
      // dq_nope = dS · K;  dq_pe = dS · k_R;  dK += dSᵀ · q_nope;  dk_R += dSᵀ · q_pe
      float* dqh = dq.data() + t0 * nh * qd + h * qd;
      gemm(Trans::No, Trans::No, n, dh, n, ds.data(), n, K, kvw, dqh, nh * qd, false);
      gemm(Trans::No, Trans::No, n, dr, n, ds.data(), n, kR, W, dqh + dh, nh * qd, false);
      gemm(Trans::Yes, Trans::No, n, dh, n, ds.data(), n, qn, nh * qd, dK, kvw, true);
      gemm(Trans::Yes, Trans::No, n, dr, n, ds.data(), n, qn + dh, nh * qd,
           drows.data() + t0 * W + dc, W, true);
    }
    t0 += n;
    probs_off += nh * n * n;
  }

  // [k_nope | v] = kv_b(ĉ):  dĉ += dkvf · kv_b;  dkv_b += dkvfᵀ · ĉ
  const float* w_kvb = f32(w.kv_b_proj, "kv_b_proj");
  gemm(Trans::No, Trans::No, T, dc, kvw, dkvf.data(), kvw, w_kvb, dc, drows.data(), W, true, prec);
  if (g.kv_b_proj)
    weight_grad(dkvf.data(), kvw, tape.rows.data(), W, g.kv_b_proj, T, kvw, dc, prec);

  // Undo RoPE on the rope parts and RMSNorm on c (per token).
  std::vector<float> dkv(size_t(T * W));  // [T, d_c + d_R] gradient of kv_a(x)
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = rope.cos.data() + t * rope.half;
    const float* sn = rope.sin.data() + t * rope.half;
    float* d = dkv.data() + t * W;
    rmsnorm_backward(tape.kv.data() + t * W, w.kv_a_layernorm.data(), drows.data() + t * W, d,
                     g.kv_a_layernorm, dc, eps);
    std::copy_n(drows.data() + t * W + dc, dr, d + dc);
    rope_interleaved_backward(d + dc, dr, cs, sn);
    for (int64_t h = 0; h < nh; ++h)
      rope_interleaved_backward(dq.data() + (t * nh + h) * qd + dh, dr, cs, sn);
  }

  // kv = kv_a(x)
  const float* w_kva = f32(w.kv_a_proj_with_mqa, "kv_a_proj_with_mqa");
  kernels::gemm_dyw(dkv.data(), w_kva, dxn, T, W, H, false, prec);
  if (g.kv_a_proj_with_mqa) weight_grad(dkv.data(), xn, g.kv_a_proj_with_mqa, T, W, H, prec);

  // q = q_b(RMSNorm(q_a(x))) or q_proj(x)
  if (cfg.q_lora_rank > 0) {
    const int64_t r = cfg.q_lora_rank;
    const float* w_qb = f32(w.q_b_proj, "q_b_proj");
    const float* w_qa = f32(w.q_a_proj, "q_a_proj");
    std::vector<float> dqa(size_t(T * r));
    kernels::gemm_dyw(dq.data(), w_qb, dqa.data(), T, nh * qd, r, false, prec);
    std::vector<float> buf;
    if (g.q_b_proj) weight_grad(dq.data(), tape.qa_n.values(buf), g.q_b_proj, T, nh * qd, r, prec);
    for (int64_t t = 0; t < T; ++t)
      rmsnorm_backward(tape.qa.data() + t * r, w.q_a_layernorm.data(), dqa.data() + t * r,
                       dqa.data() + t * r, g.q_a_layernorm, r, eps);
    kernels::gemm_dyw(dqa.data(), w_qa, dxn, T, r, H, true, prec);
    if (g.q_a_proj) weight_grad(dqa.data(), xn, g.q_a_proj, T, r, H, prec);
  } else {
    const float* w_q = f32(w.q_proj, "q_proj");
    kernels::gemm_dyw(dq.data(), w_q, dxn, T, nh * qd, H, true, prec);
    if (g.q_proj) weight_grad(dq.data(), xn, g.q_proj, T, nh * qd, H, prec);
  }
}

}  // namespace seek::model
