#include "rl/grpo.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "model/loss.h"

namespace seek::rl {

std::vector<double> group_advantages(std::span<const double> rewards, int64_t G,
                                     const AdvantageOptions& opt) {
  if (G < 1) fail("group_advantages: group size G must be >= 1 (got {})", G);
  const int64_t N = int64_t(rewards.size());
  if (N % G != 0)
    fail("group_advantages: {} rewards are not a whole number of groups of G = {}", N, G);
  std::vector<double> adv(size_t(N), 0.0);
  for (int64_t g0 = 0; g0 < N; g0 += G) {
    const double* r = rewards.data() + g0;
    // All equal (or G = 1): exactly 0, not the rounding residue of r − mean(r).
    if (std::all_of(r, r + G, [&](double x) { return x == r[0]; })) continue;
    double mean = 0.0;
    for (int64_t i = 0; i < G; ++i) mean += r[i];
    mean /= double(G);
    double scale = 1.0;
    if (opt.scale_by_std) {
      double ss = 0.0;
      for (int64_t i = 0; i < G; ++i) ss += (r[i] - mean) * (r[i] - mean);
      scale = 1.0 / (std::sqrt(ss / double(G - 1)) + opt.eps);
    }
    for (int64_t i = 0; i < G; ++i) adv[size_t(g0 + i)] = (r[i] - mean) * scale;
  }
  return adv;
}

namespace {

void check_inputs(const PolicyTokens& in, const GrpoLossOptions& opt) {
  const size_t T = in.logp.size(), n = in.seq_len.size();
  if (in.old_logp.size() != T)
    fail("grpo_loss: old_logp has {} tokens, logp has {}", in.old_logp.size(), T);
  if (in.mask.size() != T) fail("grpo_loss: mask has {} tokens, logp has {}", in.mask.size(), T);
  if (!in.ref_logp.empty() && in.ref_logp.size() != T)
    fail("grpo_loss: ref_logp has {} tokens, logp has {}", in.ref_logp.size(), T);
  if (opt.beta != 0.0 && in.ref_logp.empty() && T > 0)
    fail("grpo_loss: beta = {} needs ref_logp (the reference policy's log-probs)", opt.beta);
  if (opt.beta < 0.0) fail("grpo_loss: beta must be >= 0 (got {})", opt.beta);
  if (!(opt.eps_low >= 0.0 && opt.eps_low < 1.0) || !(opt.eps_high >= 0.0))
    fail("grpo_loss: clip range needs 0 <= eps_low < 1 and eps_high >= 0 (got {}, {})",
         opt.eps_low, opt.eps_high);
  if (in.advantage.size() != n)
    fail("grpo_loss: advantage has {} entries for {} sequences", in.advantage.size(), n);
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (in.seq_len[i] < 0) fail("grpo_loss: seq_len[{}] is negative ({})", i, in.seq_len[i]);
    total += in.seq_len[i];
  }
  if (total != int64_t(T)) fail("grpo_loss: seq_len sums to {}, logp has {} tokens", total, T);
  // A NaN or infinite log-prob of a completion token (a diverged model, a token the sampler could
  // not have drawn) would turn the whole loss into NaN several steps later; stop at the cause.
  for (size_t t = 0; t < T; ++t) {
    if (!in.mask[t]) continue;
    if (!std::isfinite(in.logp[t]) || !std::isfinite(in.old_logp[t]) ||
        (!in.ref_logp.empty() && !std::isfinite(in.ref_logp[t])))
      fail("grpo_loss: completion token {} has a non-finite log-prob (logp {}, old_logp {}{})", t,
           in.logp[t], in.old_logp[t],
           in.ref_logp.empty() ? std::string() : fmt::format(", ref_logp {}", in.ref_logp[t]));
  }
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(in.advantage[i])) fail("grpo_loss: advantage[{}] is {}", i, in.advantage[i]);
  if (opt.norm == LossNorm::Constant && opt.max_len <= 0)
    fail("grpo_loss: LossNorm::Constant (Dr. GRPO) needs max_len > 0");
  if (opt.batch_sequences < 0 || opt.batch_tokens < 0)
    fail("grpo_loss: batch_sequences and batch_tokens must be >= 0");
}

}  // namespace

double loss_weight(const GrpoLossOptions& opt, int64_t len, double n_seq, double n_tok) {
  switch (opt.norm) {
    case LossNorm::Sequence: return 1.0 / (n_seq * double(len));
    case LossNorm::Token: return 1.0 / n_tok;
    case LossNorm::Constant: return 1.0 / (n_seq * double(opt.max_len));
  }
  return 0.0;
}

TokenTerm grpo_token_term(double logp, double old_logp, double ref_logp, bool has_ref,
                          double A, double w, const GrpoLossOptions& opt) {
  TokenTerm out;
  const double rho = std::exp(logp - old_logp);
  const double lo = 1.0 - opt.eps_low, hi = 1.0 + opt.eps_high;
  // min(ρA, clip(ρ)A) takes the clipped (constant) term only past the bound on the side the
  // advantage pushes toward; inside the range both terms agree.
  const bool clip = (A > 0.0 && rho > hi) || (A < 0.0 && rho < lo);
  const double surrogate = clip ? std::clamp(rho, lo, hi) * A : rho * A;
  const double dsurrogate = clip ? 0.0 : rho * A;  // ∂/∂logp, ∂ρ/∂logp = ρ
  double kl = 0.0, dkl = 0.0;
  if (has_ref) {
    const double d = ref_logp - logp;
    kl = std::expm1(d) - d;  // e^d − 1 − d without the cancellation near d = 0; ≥ 0
    dkl = -std::expm1(d);    // ∂KL/∂logp = −e^d + 1
  }
  out.loss = -w * (surrogate - opt.beta * kl);
  out.dlogp = -w * (dsurrogate - opt.beta * dkl);
  out.clipped = clip;
  out.kl = kl;
  out.ratio = rho;
  return out;
}

GrpoLoss grpo_loss(const PolicyTokens& in, const GrpoLossOptions& opt) {
  check_inputs(in, opt);
  const size_t T = in.logp.size(), n = in.seq_len.size();
  const bool has_ref = !in.ref_logp.empty();
  GrpoLoss out;
  out.dlogp.assign(T, 0.0);
  int64_t completion = 0;
  for (size_t t = 0; t < T; ++t) completion += in.mask[t] ? 1 : 0;
  out.tokens = completion;
  const double n_seq = double(opt.batch_sequences ? opt.batch_sequences : int64_t(n));
  const double n_tok = double(opt.batch_tokens ? opt.batch_tokens : completion);

  double clipped = 0.0, kl_sum = 0.0, ratio_sum = 0.0, adv_sum = 0.0;
  size_t t0 = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t t1 = t0 + size_t(in.seq_len[i]);
    int64_t len = 0;  // |o_i|
    for (size_t t = t0; t < t1; ++t) len += in.mask[t] ? 1 : 0;
    if (len == 0) {
      t0 = t1;
      continue;
    }
    const double w = loss_weight(opt, len, n_seq, n_tok);
    const double A = in.advantage[i];
    for (size_t t = t0; t < t1; ++t) {
      if (!in.mask[t]) continue;
      const TokenTerm term = grpo_token_term(in.logp[t], in.old_logp[t],
                                             has_ref ? in.ref_logp[t] : 0.0, has_ref, A, w, opt);
      out.loss += term.loss;
      out.dlogp[t] = term.dlogp;
      clipped += term.clipped ? 1.0 : 0.0;
      kl_sum += term.kl;
      ratio_sum += term.ratio;
      adv_sum += std::abs(A);
    }
    t0 = t1;
  }
  if (completion > 0) {
    const double c = double(completion);
    out.clip_fraction = clipped / c;
    out.kl_mean = kl_sum / c;
    out.ratio_mean = ratio_sum / c;
    out.adv_abs_mean = adv_sum / c;
  }
  return out;
}

double token_logprob(float* row, int64_t V, int32_t y, bool backward, float dlogp_coef) {
  if (y < 0 || y >= V) fail("token_logprob: token {} outside the vocabulary [0, {})", y, V);
  // CE = −logp, and cross_entropy writes grad · (softmax − onehot): with grad = −dlogp_coef that
  // is dlogp_coef · (onehot − softmax).
  return -model::cross_entropy(row, V, y, backward, -dlogp_coef);
}

double entropy(const float* row, int64_t V) {
  // H = log Z − Σ p_v l_v with Z = Σ exp(l_v), both shifted by the max for range.
  const double mx = *std::max_element(row, row + V);
  double z = 0.0, pl = 0.0;
  for (int64_t v = 0; v < V; ++v) {
    const double e = std::exp(double(row[v]) - mx);
    z += e;
    pl += e * (double(row[v]) - mx);
  }
  return std::log(z) - pl / z;
}

}  // namespace seek::rl
