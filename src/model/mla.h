// Multi-head Latent Attention (DeepSeek-V2 §2.1, V3 §2.1.1), as the official inference/model.py.
#pragma once
#include <cstdint>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/grads.h"
#include "model/kv_cache.h"
#include "model/saved_activation.h"
#include "model/weights.h"

namespace seek::model {

// Per-token rotary tables for one batch: cos/sin [T, d_R/2] of angle pos·freq[i].
struct RopeTables {
  std::vector<float> cos, sin;
  int64_t half = 0;
  RopeTables(const ModelConfig& cfg, const std::vector<int64_t>& positions);
};

// What mla_backward needs from the forward (training: whole sequences, no KV cache). Attention
// then runs in the naive form, whose probabilities and expanded keys/values are kept.
struct MlaTape {
  std::vector<float> qa;     // [T, q_lora_rank] q_a_proj(x), before q_a_layernorm (q LoRA only)
  SavedActivation qa_n;      // [T, q_lora_rank] after q_a_layernorm (q_b_proj's input)
  std::vector<float> q;      // [T, nh, d_h + d_R] queries, q_pe rotated
  std::vector<float> kv;     // [T, d_c + d_R] kv_a_proj_with_mqa(x): raw c_kv | raw k_pe
  std::vector<float> rows;   // [T, d_c + d_R] key rows: RMSNorm(c_kv) | rotated k_pe
  std::vector<float> kvf;    // [T, nh, d_h + d_v] kv_b_proj(RMSNorm(c_kv)): k_nope | v
  std::vector<float> probs;  // per chunk of n tokens [nh, n, n], chunks concatenated
  std::vector<float> attn;   // [T, nh·d_v] attention output before o_proj
};

// out[T, H] = MLA(xn[T, H]) for every token of `batch`. With a cache, first writes the tokens'
// latent c_kv and rotated k_pe into it (layer `layer`), so each token attends to its own entry
// and to the slot's earlier positions. Without one (training), every chunk is a whole sequence
// from position 0 and attends only to itself; its rows live in a buffer of the call (the tape's
// `rows`, when recording what mla_backward needs — a tape requires cache == nullptr).
void mla_forward(const ModelConfig& cfg, const MlaWeights& w, int64_t layer, const float* xn,
                 const Batch& batch, const RopeTables& rope, KVCache* cache,
                 const ForwardOptions& opts, float* out, MlaTape* tape = nullptr);

// Backward of mla_forward (mla_backward.cpp). dout [T, H] → dxn [T, H] (overwritten); weight
// gradients accumulate into g. Weights must be float32 (training master weights). `prec`: the
// projections' GEMMs (kernels/gemm_train.h); the attention core stays float32.
void mla_backward(const ModelConfig& cfg, const MlaWeights& w, const float* xn,
                  const Batch& batch, const RopeTables& rope, const MlaTape& tape,
                  const float* dout, float* dxn, MlaGrads& g, kernels::Precision prec = kernels::Precision::F32);

}  // namespace seek::model
