// The DeepSeek-V2/V3 transformer: embedding → [MLA + (dense FFN | DeepSeekMoE)] × L → norm →
// head. One forward serves prefill, decode and mixed batches of many sequences: tokens of all
// sequences are concatenated ("flattened batch"), linear layers run once over all of them, and
// attention runs per sequence over that sequence's KV-cache slot.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/mla.h"
#include "model/moe.h"
#include "model/weights.h"

namespace seek::model {

struct LoadOptions {
  LoadMode mode = LoadMode::Read;
  ProgressFn progress;  // (bytes done, bytes total) while reading weights
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& dir, const LoadOptions& opts = {});
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& dir() const { return dir_; }
  const TensorStore& weights_store() const { return store_; }

 private:
  std::string dir_;
  ModelConfig config_;
  TensorStore store_;  // owns the bytes every WeightView points into
  ModelWeights weights_;
};

// Sizes `seek info` reports, derived from the config and the stored dtypes.
struct ModelStats {
  int64_t params_total = 0;         // every tensor, MTP modules included
  int64_t params_active = 0;        // used per token: top-k routed + shared experts, no MTP
  int64_t weight_bytes_total = 0;
  int64_t weight_bytes_per_token = 0;  // bytes of weights one decoded token reads
  int64_t kv_bytes_per_token = 0;      // MLA cache (all layers, KVCache::Element)
  int64_t mha_kv_bytes_per_token = 0;  // an equivalent MHA cache (k and v of every head)
};
ModelStats model_stats(const Model& m);

// One decoder block, in place on the residual stream h [T, H]:
//   h += MLA(RMSNorm(h));  h += FFN(RMSNorm(h))   (FFN dense or DeepSeekMoE)
// Inference, training and the MTP modules all run their blocks through this.
struct BlockTape {  // what block_backward needs (training)
  std::vector<float> h_in, xn1, h_mid, xn2;  // [T, H] each
  MlaTape attn;
  FfnTape mlp;
  MoeTape moe;
};
void block_forward(const ModelConfig& cfg, const LayerWeights& lw, int64_t layer, float* h,
                   const Batch& batch, const RopeTables& rope, KVCache& cache,
                   const ForwardOptions& opts, Routing* routing = nullptr,
                   BlockTape* tape = nullptr);
// dh [T, H]: gradient of the block's output in, of its input out. `dscores` as in moe_backward.
void block_backward(const ModelConfig& cfg, const LayerWeights& lw, const Batch& batch,
                    const RopeTables& rope, const BlockTape& tape, float* dh, LayerGrads& g,
                    const float* dscores = nullptr);

// Runs the batch, appends its KV entries to the cache, and writes logits
// [Σ_seq (all_logits ? n_tokens : 1), vocab] into `logits`.
void forward(const Model& m, KVCache& cache, const Batch& batch, std::vector<float>& logits,
             const ForwardOptions& opts = {});

}  // namespace seek::model
