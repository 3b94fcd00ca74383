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

// Speculative decoding's draft (inference): module 0 over `batch`, whose tokens are the ones
// after each position's (t_{i+1}) and `h_prev` [T, H] the main model's last hidden states there
// (ForwardOptions::last_hidden). Writes the chunk's KV rows into the cache's MTP layer (the cache
// needs one: KVCache(..., mtp_layers = 1)) and logits [n_seqs, V] at each chunk's last position
// through shared_head: the distribution of the token two places ahead of that position.
// `hidden` (optional) gets the module's output there [n_seqs, H] (before shared_head.norm): the
// h_prev of a chained draft one position on, whose token is the draft drawn from these logits.
void mtp_draft(const Model& m, KVCache& cache, const float* h_prev, const Batch& batch,
               std::vector<float>& logits, const ForwardOptions& opts = {},
               std::vector<float>* hidden = nullptr);

// dh_out [T, H] → dh_prev [T, H] (overwritten); embedding gradients are scattered into
// g_embed [vocab, H] (the shared embedding), the rest into g. `prec` as in block_backward.
void mtp_backward(const ModelConfig& cfg, const MtpWeights& w, const Batch& batch,
                  const RopeTables& rope, const MtpTape& tape, const float* dh_out,
                  float* dh_prev, MtpGrads& g, float* g_embed, kernels::Precision prec = kernels::Precision::F32);

}  // namespace seek::model
