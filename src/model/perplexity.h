// Perplexity of a model on a token stream, and how far another model's next-token distributions
// drift from it (the quality of a quantized file against its original), in llama.cpp's
// `llama-perplexity` convention so the two tools' figures compare:
//   the stream is cut into chunks of `ctx` tokens (the last partial chunk is dropped); a chunk's
//   first token becomes BOS; each chunk is one prefill from position 0; the logits at positions
//   ctx/2 .. ctx−2 are scored against the next token (every scored token has ≥ ctx/2 context).
//   PPL = exp(mean NLL). With a reference model over the same chunks, per scored position:
//   KL(P_ref ‖ P), whether both argmaxes agree, and the difference of the correct token's
//   probability.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

#include "kernels/matmul.h"
#include "model/transformer.h"

namespace seek::model {

struct PerplexityOptions {
  int64_t ctx = 512;
  int64_t max_chunks = 0;  // 0: every whole chunk
  kernels::Precision precision = kernels::Precision::BF16;
  // Called after each chunk with (chunks done, chunks total).
  std::function<void(int64_t, int64_t)> progress;
};

struct PerplexityResult {
  int64_t chunks = 0, tokens = 0;  // scored tokens
  double nll = 0.0;                // Σ −log p(next token)
  double ppl() const;
  // With a reference (all sums over the scored tokens):
  double ref_nll = 0.0;
  double kl = 0.0;              // Σ KL(P_ref ‖ P)
  double kl_max = 0.0;          // the largest single-token KL
  int64_t same_top = 0;         // positions whose argmax equals the reference's
  double dp_sq = 0.0;           // Σ (p(next) − p_ref(next))²
  double ref_ppl() const;
};

// Throws seek::Error when fewer than ctx tokens are given, ctx < 4 or ctx exceeds either model's
// max_position_embeddings, or the two models' vocabularies differ.
PerplexityResult perplexity(const Model& m, std::span<const int32_t> ids,
                            const PerplexityOptions& opt, const Model* ref = nullptr);

}  // namespace seek::model
