// DeepSeekMoE (DeepSeekMoE paper; V2 §2.2; V3 §2.1.2): shared experts every token uses plus
// top-k routed experts, and the dense SwiGLU FFN of the first layers.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"
#include "model/config.h"
#include "model/expert_parallel.h"
#include <functional>

#include "model/grads.h"
#include "model/saved_activation.h"
#include "model/weights.h"

namespace seek::model {

// What ffn_backward needs from the forward (training): the SwiGLU inputs (its output is
// recomputed), as V3 keeps them: FP8 under FP8 training.
struct FfnTape {
  SavedActivation g, u;  // [T, I] gate(x), up(x)
};

// out[T, H] = down(silu(gate(x)) · up(x)). `progress`, if given, is called between the products
// (an expert-parallel exchange in flight meanwhile: ExpertExchange::alltoallv_overlapped).
void ffn_forward(const FfnWeights& w, const float* x, int64_t T, int64_t H, float* out,
                 kernels::Precision prec, FfnTape* tape = nullptr,
                 const std::function<void()>& progress = {});

// The router's decision for T tokens: k experts each, in descending selection score.
struct Routing {
  int64_t k = 0;
  std::vector<int32_t> experts;  // [T, k]
  std::vector<float> weights;    // [T, k] gate values g (after norm_topk_prob and scaling)
  std::vector<float> scores;     // [T, n_routed] s = softmax or sigmoid of the router logits
};

// Scores, selection (greedy / group_limited_greedy / noaux_tc, the correction bias affecting the
// choice only) and gate values, from router logits [T, n_routed].
Routing moe_route(const ModelConfig& cfg, const float* logits, int64_t T,
                  const std::vector<float>& bias);

// What moe_backward needs from the forward (training).
struct MoeTape {
  Routing routing;
  std::vector<std::vector<std::pair<int32_t, int32_t>>> assigned;  // per expert: (token, slot)
  std::vector<std::vector<float>> expert_out;  // per expert [n_e, H] Expert_e(x) before gating
  // The experts this rank ran (all E alone; its own E/n with expert parallelism), in order:
  std::vector<FfnTape> experts;
  // Expert parallelism only: the exchange of the forward, the rows each of this rank's experts
  // ran on ([Σ_src rows, H], source rank after source rank), and the rows received from each
  // rank for each of its experts ([n, E/n], source-major).
  const ExpertExchange* ep = nullptr;
  std::vector<SavedActivation> expert_in;
  std::vector<int64_t> recv_counts;
  FfnTape shared;
};

// out[T, H] = Σ_{e ∈ TopK} g_e · Expert_e(x) + SharedExperts(x). `routing` receives the decision.
// With `ep` (expert parallelism, model/expert_parallel.h) this rank runs only its own experts,
// over the rows every rank of the group dispatches to them.
void moe_forward(const ModelConfig& cfg, const MoeWeights& w, const float* xn, int64_t T,
                 float* out, kernels::Precision prec, Routing* routing = nullptr,
                 MoeTape* tape = nullptr, const ExpertExchange* ep = nullptr);

// Backward passes (moe_backward.cpp). dout [T, H] → dx [T, H] (overwritten); weight gradients
// accumulate. The router is trained through the gate values of the chosen experts (not the
// discrete choice); `dscores` [T, n_routed], if given, is an extra gradient on the scores s
// (the sequence-wise balance loss). `prec`: the experts' GEMMs (kernels/gemm_train.h); the
// router's stay float32.
void ffn_backward(const FfnWeights& w, const float* x, int64_t T, int64_t H, const FfnTape& tape,
                  const float* dout, float* dx, FfnGrads& g, bool accumulate_dx = false,
                  kernels::Precision prec = kernels::Precision::F32,
                  const std::function<void()>& progress = {});
void moe_backward(const ModelConfig& cfg, const MoeWeights& w, const float* xn, int64_t T,
                  const MoeTape& tape, const float* dout, const float* dscores, float* dx,
                  MoeGrads& g, kernels::Precision prec = kernels::Precision::F32);

}  // namespace seek::model
