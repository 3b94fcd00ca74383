#include "model/loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"
#include "model/weight_grad.h"

namespace seek::model {

using kernels::rmsnorm_backward;

double cross_entropy(float* l, int64_t V, int32_t y, bool backward, float grad) {
  const float mx = *std::max_element(l, l + V);
  thread_local std::vector<float> e;  // e^(l − max)
  e.resize(size_t(V));
  kernels::exp_shifted(l, mx, e.data(), V);
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v) sum += double(e[size_t(v)]);
  const double ce = std::log(sum) + double(mx) - double(l[y]);
  if (backward) {
    const float inv = float(1.0 / sum);
    for (int64_t v = 0; v < V; ++v) l[v] = e[size_t(v)] * inv * grad;
    l[y] -= grad;
  }
  return ce;
}

double head_loss(const float* h, int64_t N, int64_t H, const std::vector<float>& gain,
                 const WeightView& head, const int32_t* targets, HeadTerm& term, float eps,
                 float grad, float* dh, float* g_gain, float* g_head, kernels::Precision prec) {
  const int64_t V = head.rows, chunk = 256;
  if (head.dtype != DType::F32) fail("training needs a float32 output head");
  const float* Wh = static_cast<const float*>(head.data);
  std::vector<float> xn(size_t(chunk * H)), logits(size_t(chunk * V)), dxn(size_t(chunk * H));
  double total = 0.0;
  std::vector<double> ce;  // per row of a chunk
  const bool bwd = dh != nullptr;
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t n = std::min(chunk, N - r0);
    for (int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(h + (r0 + i) * H, gain.data(), xn.data() + i * H, H, eps);
    kernels::gemm_xwt(xn.data(), Wh, logits.data(), n, V, H, false, prec);  // [n, V]
    if (term.objective) {  // the caller's objective, row after row
      for (int64_t i = 0; i < n; ++i) {
        float* row = logits.data() + i * V;
        const int32_t y = targets[r0 + i];
        const double nll = cross_entropy(row, V, y, false, 0.0f);
        double dlogp = 0.0;
        term.nll_sum += nll;
        total += (*term.objective)(r0 + i, -nll, std::span<const float>(row, size_t(V)), dlogp);
        // CE = −logp, so the CE gradient with coefficient −dlogp is dlogp · ∂logp/∂row.
        if (bwd) cross_entropy(row, V, y, true, grad * float(-dlogp));
      }
    } else {  // (weighted) CE: rows in parallel, summed in order
      ce.assign(size_t(n), 0.0);
      parallel_ranges(n, std::max<int64_t>(1, kElementwiseGrain / V), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* row = logits.data() + i * V;
          if (const float w = term.weights ? term.weights[r0 + i] : 1.0f; w != 0.0f)
            ce[size_t(i)] = double(w) * cross_entropy(row, V, targets[r0 + i], bwd, grad * w);
          else if (bwd)
            std::fill_n(row, V, 0.0f);
        }
      });
      for (double c : ce) total += c;
    }
    if (!bwd) continue;
    kernels::gemm_dyw(logits.data(), Wh, dxn.data(), n, V, H, false, prec);
    if (g_head) weight_grad(logits.data(), xn.data(), g_head, n, V, H, prec);
    for (int64_t i = 0; i < n; ++i)
      rmsnorm_backward(h + (r0 + i) * H, gain.data(), dxn.data() + i * H, dh + (r0 + i) * H,
                       g_gain, H, eps);
  }
  return total;
}

double balance_loss(const ModelConfig& cfg, const Routing& r, const Batch& batch, double alpha,
                    float grad, float* dscores) {
  const int64_t E = cfg.n_routed_experts, K = r.k;
  const bool sigmoid = cfg.scoring_func == ScoringFunc::Sigmoid;
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
        const double c = alpha * per_seq / double(n) * grad;
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

}  // namespace seek::model
