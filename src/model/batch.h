// What one forward call runs: a flattened batch of sequence chunks (vLLM style), so prefill,
// decode and mixes of both go through the same code.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"

namespace seek::model {

struct Routing;
class ExpertExchange;

// One sequence's share of a batch: n_tokens consecutive tokens at positions start_pos.., whose
// KV entries go to `slot`. Attention sees the slot's cached positions [0, start_pos) plus these.
struct SeqChunk {
  int slot = 0;
  int64_t start_pos = 0;
  int64_t n_tokens = 0;
  bool all_logits = false;  // logits for every token (else only the last)
};

struct Batch {
  std::vector<int32_t> tokens;  // concatenated over seqs
  std::vector<SeqChunk> seqs;
};

struct ForwardOptions {
  // Activation precision of the big products. F32 (--precise) matches the official reference
  // to ~1e-5; BF16 (the default for prefill and decode) uses the CPU's bf16 dot units, which
  // double the prefill rate and take fewer instructions per FP8 weight in decode.
  kernels::Precision precision = kernels::Precision::F32;
  // MLA attention: Absorbed runs over the latent cache with W_UK/W_UV folded into the query and
  // output (cheapest for decode); Naive expands the cache to per-head keys/values (cheaper for
  // long prefill chunks). Auto picks per chunk. Both compute the same function.
  enum class Attention { Auto, Absorbed, Naive } attention = Attention::Auto;
  std::vector<float>* hidden_states = nullptr;  // if set: [L+1, tokens, H] residual stream
  std::vector<float>* last_hidden = nullptr;    // if set: [tokens, H] last block's output
                                                // (before the final norm: the MTP's input)
  std::vector<Routing>* routing = nullptr;      // if set: per layer, the router's decisions
  // Expert parallelism (model/expert_parallel.h): this rank runs only its share of the routed
  // experts, exchanging rows with the other ranks of the group in every MoE layer.
  const ExpertExchange* experts = nullptr;
};

}  // namespace seek::model
