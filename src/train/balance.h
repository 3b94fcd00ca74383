// Auxiliary-loss-free load balancing (DeepSeek-V3 §2.1.2): each MoE layer keeps a bias b_i per
// expert that is added to the scores only to choose the top-k (e_score_correction_bias). After
// every step, b_i −= γ for overloaded experts and b_i += γ for underloaded ones, relative to the
// layer's mean load over the step's tokens. The bias gets no gradient.
#pragma once
#include <cstdint>
#include <vector>

#include "model/params.h"

namespace seek::train {

// loads[j][e]: tokens routed to expert e in MoE block layers[j] over the step. Returns the
// number of biases changed.
int64_t update_balance_bias(model::Params& p, const std::vector<int64_t>& layers,
                            const std::vector<std::vector<int64_t>>& loads, double gamma);

// MaxVio = max_i load_i / mean load − 1 (0 for a perfectly balanced layer).
double max_violation(const std::vector<int64_t>& load);

}  // namespace seek::train
