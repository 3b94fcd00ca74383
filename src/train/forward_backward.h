// One training step's math: the shared forward over a batch of whole sequences keeping what
// backward needs (or recomputing it per block), the objective
//   L = CE(main) + (λ/D) Σ_k CE(MTP module k) + α Σ_MoE layers L_bal
// and the backward into float32 gradients. Also the expert loads the balancing rule uses.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"
#include "model/config.h"
#include "model/grads.h"
#include "model/weights.h"

namespace seek::train {

// B sequences of S + 1 tokens: inputs t[0..S-1], main targets t[1..S]; MTP module k predicts
// t[i+k+2] at position i.
struct TokenBatch {
  int64_t B = 0, S = 0;
  std::vector<int32_t> tokens;  // [B, S + 1]
};

struct ObjectiveOptions {
  double mtp_lambda = 0.3;     // λ (ignored without MTP modules)
  double balance_alpha = 0.0;  // α of the sequence-wise balance loss (0: off)
  bool recompute = false;      // keep only block inputs; rerun each block's forward in backward
  bool backward = true;        // false: loss only (validation)
  float grad_scale = 1.0f;     // gradients are of grad_scale · L (gradient accumulation)
};

struct StepResult {
  double loss = 0.0;                 // the full objective
  double ce = 0.0;                   // main next-token cross-entropy (nats/token)
  std::vector<double> ce_mtp;        // per MTP module
  double balance = 0.0;              // Σ layers L_bal (already × α)
  int64_t tokens = 0;                // main predictions
  // Tokens routed to each expert, per MoE block (main layers, then MTP blocks): [n_moe][E]
  std::vector<std::vector<int64_t>> expert_load;
  std::vector<int64_t> moe_layers;   // layer index of each row of expert_load
  size_t tape_bytes = 0;             // activations held for backward at the peak
};

// Gradients accumulate (+=) into g (zero it first for a fresh step).
StepResult forward_backward(const model::ModelConfig& cfg, const model::ModelWeights& w,
                            model::ModelGrads& g, const TokenBatch& batch,
                            const ObjectiveOptions& opts);

// MaxVio = max_i load_i / mean load − 1 (0 for a perfectly balanced layer).
double max_violation(const std::vector<int64_t>& load);

}  // namespace seek::train
