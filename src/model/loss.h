// The terms of the training objective (DeepSeek-V3 §2.2-2.3): next-token cross-entropy through
// the final norm and an output head, and the sequence-wise balance loss of one MoE layer.
//
// Gradients are of c · Σ_rows loss_row with one coefficient c for every row. Per-token losses
// that need a per-row coefficient (an SFT loss mask, a GRPO policy-gradient weight on log π of
// the sampled token: −CE_row is that log-prob) enter at the one place the coefficient is applied
// to a row, in cross_entropy_grad.
#pragma once
#include <cstdint>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/moe.h"
#include "model/weights.h"

namespace seek::model {

// CE of one row of logits [V] against target y: log Σ_v exp(l_v) − l_y (the softmax in double).
// With backward, also overwrites the row with grad · ∂CE/∂logits = grad · (softmax − onehot(y)).
double cross_entropy(float* logits, int64_t V, int32_t y, bool backward, float grad);

// Σ over the N rows of CE(head(RMSNorm(h; gain)), targets), computed in chunks of rows so the
// [rows, vocab] logits stay small. With dh: dh [N, H] = ∂(grad · Σ CE)/∂h (written), and the
// gain and head gradients accumulate (each may be null). The head must be float32.
double head_cross_entropy(const float* h, int64_t N, int64_t H, const std::vector<float>& gain,
                          const WeightView& head, const int32_t* targets, float eps, float grad,
                          float* dh, float* g_gain, float* g_head);

// Sequence-wise balance loss of one MoE layer (V3 eq. 17-20), averaged over the sequences of
// `batch` (its chunks):
//   L = α Σ_i f_i P_i,  f_i = E/(K·n) Σ_t 1[i ∈ TopK(t)],  P_i = (1/n) Σ_t s'_{i,t}
// with s' the scores normalized over all experts. f is a count (no gradient); dscores
// [T, n_routed], if given, accumulates ∂(grad · L)/∂s.
double balance_loss(const ModelConfig& cfg, const Routing& r, const Batch& batch, double alpha,
                    float grad, float* dscores);

}  // namespace seek::model
