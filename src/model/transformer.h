// The DeepSeek-V2/V3 transformer: embedding → [MLA + (dense FFN | DeepSeekMoE)] × L → norm →
// head. One forward serves prefill, decode and mixed batches of many sequences: tokens of all
// sequences are concatenated ("flattened batch"), linear layers run once over all of them, and
// attention runs per sequence over that sequence's KV-cache slot. Training runs the same blocks
// over whole sequences without a cache, and owns its backward here too (forward_backward).
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

// h[T, H] = table[ids]: the one embedding lookup (main model, MTP modules, training); an id
// outside the table is an error naming it.
void embed(const WeightView& table, const int32_t* ids, int64_t T, float* h);
// Its backward: scatter-adds dh[T, H] into the rows g_table [vocab, H] of the ids, in token order.
void embed_backward(const int32_t* ids, int64_t T, int64_t H, const float* dh, float* g_table);

// One decoder block, in place on the residual stream h [T, H]:
//   h += MLA(RMSNorm(h));  h += FFN(RMSNorm(h))   (FFN dense or DeepSeekMoE)
// Inference, training and the MTP modules all run their blocks through this; `cache` as in
// mla_forward (null for training: whole sequences).
struct BlockTape {  // what block_backward needs (training)
  std::vector<float> h_in, xn1, h_mid, xn2;  // [T, H] each
  MlaTape attn;
  FfnTape mlp;
  MoeTape moe;
};
void block_forward(const ModelConfig& cfg, const LayerWeights& lw, int64_t layer, float* h,
                   const Batch& batch, const RopeTables& rope, KVCache* cache,
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

// ---- Training (transformer_backward.cpp): the whole model over whole sequences, no KV cache.
// Forward keeping what backward needs (or recomputing it per block), the objective
//   L = CE(main) + (λ/D) Σ_k CE(MTP module k) + α Σ_MoE layers L_bal       (loss.h)
// and the backward into float32 gradients; also the expert loads the balancing rule uses.

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

// Gradients accumulate (+=) into g (zero it first for a fresh step). Weights must be float32.
StepResult forward_backward(const ModelConfig& cfg, const ModelWeights& w, ModelGrads& g,
                            const TokenBatch& batch, const ObjectiveOptions& opts);

}  // namespace seek::model
