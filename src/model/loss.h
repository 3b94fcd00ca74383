// The terms of the training objective (DeepSeek-V3 §2.2-2.3): next-token cross-entropy through
// the final norm and an output head, and the sequence-wise balance loss of one MoE layer.
//
// A head's rows carry a weight (an SFT loss mask) or a per-token objective on log π of the target
// (GRPO: −CE_row is that log-prob); both enter where a row's gradient is formed, in head_loss.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/moe.h"
#include "model/weights.h"

namespace seek::model {

// CE of one row of logits [V] against target y: log Σ_v exp(l_v) − l_y (the softmax in double).
// With backward, also overwrites the row with grad · ∂CE/∂logits = grad · (softmax − onehot(y)).
double cross_entropy(float* logits, int64_t V, int32_t y, bool backward, float grad);

// GRPO's per-token objective, in place of the main head's cross-entropy. Called once per target
// row in order (row indexes the Σ n_i targets), on the calling thread, with logp =
// log_softmax(logits)[target] (float32 logits, softmax in double) and the row's logits [V]
// (e.g. for an entropy metric). Returns the row's loss term and sets dlogp = ∂term/∂logp; the
// backward sends grad_scale · dlogp · (onehot(target) − softmax) into the head. A term that does
// not depend on logp sets dlogp = 0.
using TokenObjective =
    std::function<double(int64_t row, double logp, std::span<const float> logits, double& dlogp)>;

// What a head's rows contribute: weighted cross-entropy (weights null: all 1), or a token
// objective on each row's log-prob (which then also sums the rows' −logp into nll_sum).
struct HeadTerm {
  const float* weights = nullptr;              // [N]; a row of weight 0 is skipped
  const TokenObjective* objective = nullptr;
  double nll_sum = 0.0;                        // out, with an objective: Σ −logp
};

// Σ over the N rows of the term on head(RMSNorm(h; gain)) with the targets (Σ w·CE, or Σ of the
// objective's terms), computed in chunks of rows so the [rows, vocab] logits stay small. With
// dh: dh [N, H] = ∂(grad · Σ)/∂h (written), and the gain and head gradients accumulate (each
// may be null). The head must be float32; `prec`, the precision of its GEMMs.
double head_loss(const float* h, int64_t N, int64_t H, const std::vector<float>& gain,
                 const WeightView& head, const int32_t* targets, HeadTerm& term, float eps,
                 float grad, float* dh, float* g_gain, float* g_head,
                 kernels::Precision prec = kernels::Precision::F32);

// Sequence-wise balance loss of one MoE layer (V3 eq. 17-20), averaged over the sequences of
// `batch` (its chunks):
//   L = α Σ_i f_i P_i,  f_i = E/(K·n) Σ_t 1[i ∈ TopK(t)],  P_i = (1/n) Σ_t s'_{i,t}
// with s' the scores normalized over all experts. f is a count (no gradient); dscores
// [T, n_routed], if given, accumulates ∂(grad · L)/∂s.
double balance_loss(const ModelConfig& cfg, const Routing& r, const Batch& batch, double alpha,
                    float grad, float* dscores);

}  // namespace seek::model
