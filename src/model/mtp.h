// Multi-Token Prediction (DeepSeek-V3 §2.2). Module k (0-based; the paper's depth k+1) at
// position i combines the previous depth's hidden state h_i (the main model's last hidden state,
// before the final norm, for k = 0) with the embedding of the token k+1 places ahead,
//   h'_i = eh_proj [enorm(Emb(t_{i+k+1})) ; hnorm(h_i)]      (this concatenation order: the release)
// then runs one decoder block (stored as layer num_hidden_layers + k) over the shortened
// sequence; shared_head.norm and the shared output head then predict t_{i+k+2}.
#pragma once
#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace seek::model {

struct MtpTape {
  std::vector<float> emb, h_prev;  // [T, H] inputs of the two norms
  std::vector<float> cat;          // [T, 2H] [enorm(emb) ; hnorm(h_prev)]
  BlockTape block;
};

// h_out[T, H] = Block(eh_proj(cat)). `batch.tokens` are the look-ahead tokens t_{i+k+1}; its
// chunks give the positions (from 0 per sequence). A `cache` needs num_hidden_layers + k + 1
// layers; training passes none (whole sequences, as mla_forward).
void mtp_forward(const ModelConfig& cfg, const MtpWeights& w, int64_t k, const float* h_prev,
                 const Batch& batch, const RopeTables& rope, KVCache* cache,
                 const ForwardOptions& opts, float* h_out, Routing* routing = nullptr,
                 MtpTape* tape = nullptr);

// dh_out [T, H] → dh_prev [T, H] (overwritten); embedding gradients are scattered into
// g_embed [vocab, H] (the shared embedding), the rest into g.
void mtp_backward(const ModelConfig& cfg, const MtpWeights& w, const Batch& batch,
                  const RopeTables& rope, const MtpTape& tape, const float* dh_out,
                  float* dh_prev, MtpGrads& g, float* g_embed);

}  // namespace seek::model
