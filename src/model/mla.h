// Multi-head Latent Attention (DeepSeek-V2 §2.1, V3 §2.1.1), as the official inference/model.py.
#pragma once
#include <cstdint>

#include "model/batch.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace seek::model {

// Per-token rotary tables for one batch: cos/sin [T, d_R/2] of angle pos·freq[i].
struct RopeTables {
  std::vector<float> cos, sin;
  int64_t half = 0;
  RopeTables(const ModelConfig& cfg, const std::vector<int64_t>& positions);
};

// out[T, H] = MLA(xn[T, H]) for every token of `batch`; writes the tokens' latent c_kv and
// rotated k_pe into `cache` (layer `layer`) first, so each token attends to its own entry.
void mla_forward(const ModelConfig& cfg, const MlaWeights& w, int64_t layer, const float* xn,
                 const Batch& batch, const RopeTables& rope, KVCache& cache,
                 const ForwardOptions& opts, float* out);

}  // namespace seek::model
