// The DeepSeek-V2/V3 transformer: embedding → [MLA + (dense FFN | DeepSeekMoE)] × L → norm →
// head. One forward serves prefill, decode and mixed batches of many sequences: tokens of all
// sequences are concatenated ("flattened batch"), linear layers run once over all of them, and
// attention runs per sequence over that sequence's KV-cache slot. Training runs the same blocks
// over whole sequences without a cache, and owns its backward here too (forward_backward).
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "kernels/matmul.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/expert_parallel.h"
#include "model/kv_cache.h"
#include "model/loss.h"
#include "model/mla.h"
#include "model/moe.h"
#include "model/pipeline_link.h"
#include "model/weights.h"

namespace seek::model {

struct LoadOptions {
  LoadMode mode = LoadMode::Read;
  ProgressFn progress;  // (bytes done, bytes total) while reading weights
  // A pipeline stage (model/pipeline_link.h): main layers [first_layer, last_layer) only, with
  // the embedding on the first stage and the final norm and head on the last; the MTP modules
  // are left out. A safetensors directory's other tensors are never read. last_layer -1: all.
  int64_t first_layer = 0, last_layer = -1;
  // Routed experts across processes (model/expert_parallel.h): this process's share of them.
  ExpertShare experts;
};

class Model {
 public:
  // `dir` is a Hugging Face model directory (config.json + safetensors) or a llama.cpp
  // deepseek2 .gguf file (model/gguf_import.h).
  static std::unique_ptr<Model> load(const std::string& dir, const LoadOptions& opts = {});
  // A model over float32 weights owned elsewhere (model::Params::weights()), so an engine
  // decodes the policy being trained (GRPO rollouts) without a copy. The memory must outlive the
  // Model; change the weights (Params::sync(m.weights_for_update())) only while no forward runs.
  static std::unique_ptr<Model> borrow(const ModelConfig& cfg, ModelWeights w);
  ModelWeights& weights_for_update() { return weights_; }
  // The main layers this process holds: [0, L) unless it is a pipeline stage.
  int64_t first_layer() const { return first_layer_; }
  int64_t last_layer() const { return last_layer_; }
  bool is_stage() const { return first_layer_ != 0 || last_layer_ != config_.num_hidden_layers; }
  // A stage's link to the others (forward() then runs across them); the model owns it.
  void set_pipeline(std::unique_ptr<PipelineLink> link) { pipeline_ = std::move(link); }
  const PipelineLink* pipeline() const { return pipeline_.get(); }
  // The group its routed experts are split across (forward() then exchanges rows with it in
  // every MoE layer); the model owns it.
  void set_experts(std::unique_ptr<ExpertServers> group) { experts_ = std::move(group); }
  const ExpertServers* experts() const { return experts_.get(); }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& dir() const { return dir_; }
  const TensorStore& weights_store() const { return store_; }

 private:
  std::string dir_;
  ModelConfig config_;
  TensorStore store_;  // owns the bytes every WeightView points into
  ModelWeights weights_;
  int64_t first_layer_ = 0, last_layer_ = 0;
  std::unique_ptr<PipelineLink> pipeline_;
  std::unique_ptr<ExpertServers> experts_;
};

// Sizes `seek info` reports, derived from the config and the stored dtypes.
struct ModelStats {
  int64_t params_total = 0;         // every tensor, MTP modules included
  int64_t params_active = 0;        // used per token: top-k routed + shared experts, no MTP
  int64_t weight_bytes_total = 0;
  int64_t weight_bytes_per_token = 0;  // bytes of weights one decoded token reads
  int64_t kv_bytes_per_token = 0;      // MLA cache (all layers, BF16 as the engine keeps it)
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
  std::vector<float> h_in, h_mid;  // [T, H] each
  SavedActivation xn1, xn2;         // [T, H] the attention's and the FFN's inputs
  MlaTape attn;
  FfnTape mlp;
  MoeTape moe;
};
void block_forward(const ModelConfig& cfg, const LayerWeights& lw, int64_t layer, float* h,
                   const Batch& batch, const RopeTables& rope, KVCache* cache,
                   const ForwardOptions& opts, Routing* routing = nullptr,
                   BlockTape* tape = nullptr);
// dh [T, H]: gradient of the block's output in, of its input out. `dscores` as in moe_backward;
// `prec`, the precision of the projections' and experts' GEMMs (ObjectiveOptions::precision).
void block_backward(const ModelConfig& cfg, const LayerWeights& lw, const Batch& batch,
                    const RopeTables& rope, const BlockTape& tape, float* dh, LayerGrads& g,
                    const float* dscores = nullptr, kernels::Precision prec = kernels::Precision::F32);

// Runs the batch, appends its KV entries to the cache, and writes logits
// [Σ_seq (all_logits ? n_tokens : 1), vocab] into `logits`. On a pipeline stage (Model::
// pipeline()) it runs the stage's part: stage 0 announces the batch and returns the last stage's
// logits; the others (driven by dist::follow_stage) leave `logits` empty, the last one sends them.
void forward(const Model& m, KVCache& cache, const Batch& batch, std::vector<float>& logits,
             const ForwardOptions& opts = {});
// Copies slot src's first n cache rows of every layer to slot dst (prefix reuse); on stage 0 of
// a pipeline the other stages copy theirs too.
void copy_cache_prefix(const Model& m, KVCache& cache, int src, int dst, int64_t n);
// A following pipeline stage (not stage 0): runs its part of every forward and cache copy
// stage 0 announces, on a KV cache shaped as stage 0's, until stage 0 ends.
void follow_stage(const Model& m);
// An expert rank (Model::experts(), not its group's rank 0): runs its experts on the rows its
// group's rank 0 sends in every MoE layer of every forward, until rank 0 ends.
void serve_experts(const Model& m);

// ---- Training (transformer_backward.cpp): the whole model over whole sequences, no KV cache.
// Forward keeping what backward needs (or recomputing it per block), the objective
//   L = CE(main) + (λ/D) Σ_k CE(MTP module k) + α Σ_MoE layers L_bal       (loss.h)
// and the backward into float32 gradients; also the expert loads the balancing rule uses.

// Sequences back to back: sequence i has lengths[i] + 1 tokens, inputs t[0..n_i-1] and targets
// t[1..n_i]; MTP module k predicts t[j+k+2] at position j. Each sequence is its own attention
// span with positions from 0, so samples packed into one batch (SFT) never see each other.
struct TokenBatch {
  std::vector<int32_t> tokens;   // Σ (n_i + 1)
  std::vector<int64_t> lengths;  // n_i ≥ 1
  // Optional [Σ n_i]: the weight of each target in the main CE (an SFT loss mask: 1 on the
  // assistant's tokens, 0 elsewhere); empty = all 1. MTP module k weighs its target t[j+k+2]
  // with the main weight of that same target, weights[j+k+1].
  std::vector<float> weights;
  // B windows of S + 1 tokens each ([B, S + 1] row-major): pretraining.
  static TokenBatch rows(int64_t B, int64_t S, std::vector<int32_t> tokens);
  int64_t targets() const;  // Σ n_i
  // Sequences [a, b) with their tokens and weights (a data-parallel rank's share of a batch).
  TokenBatch sequences(size_t a, size_t b) const;
};

// A reward model's objective, in place of the head: xn [T, H] = RMSNorm(last hidden states;
// the final norm) at all T = Σ n_i input positions. Returns the loss and, when dxn is given
// (backward), writes ∂loss/∂xn [T, H] (zeros where unused), which the step sends back through
// the final norm into the model (gradients are of grad_scale · loss).
using HiddenObjective = std::function<double(const float* xn, int64_t T, int64_t H, float* dxn)>;

struct ObjectiveOptions {
  double mtp_lambda = 0.3;     // λ (ignored without MTP modules)
  double balance_alpha = 0.0;  // α of the sequence-wise balance loss (0: off)
  bool recompute = false;      // keep only block inputs; rerun each block's forward in backward
  bool backward = true;        // false: loss only (validation)
  float grad_scale = 1.0f;     // gradients are of grad_scale · L (gradient accumulation)
  // The main CE is Σ w·CE / weight_total, each MTP module's Σ w·CE_k / weight_total; 0 means
  // this batch's own sums (Σ w, or the target count). An optimizer step split into micro-batches
  // passes the whole step's Σ w here (and grad_scale 1), so its loss is the mean over the step's
  // weighted tokens rather than a mean of micro-batch means.
  double weight_total = 0.0;
  // Mixed precision of the linear layers' GEMMs (forward, input and weight gradients; attention
  // projections, dense and expert FFNs, MTP eh_proj). BF16: bf16 operands, fp32 accumulation;
  // the forward reads bf16 copies of those matrices (with_bf16_matrices, made per call), the
  // backward rounds the float32 master weights to the same values while packing. FP8: V3's FP8
  // GEMMs (kernels/gemm_train.h) on the float32 master weights, quantized per 128×128 block in
  // every GEMM, activations and gradients per 1×128 tile; the output heads then run in BF16.
  // Embedding, router, norms and the attention core stay float32 in both.
  kernels::Precision precision = kernels::Precision::F32;
  // Expert parallelism: the routed experts split across the ranks of this exchange's group
  // (model/expert_parallel.h). Every rank of the group must run forward_backward with the same
  // options at the same time, each on its own sequences (at least one).
  const ExpertExchange* experts = nullptr;
  TokenObjective token_objective;    // GRPO; MTP modules do not run with it
  HiddenObjective hidden_objective;  // reward model; MTP modules do not run with it
};

struct StepResult {
  double loss = 0.0;                 // the full objective
  double ce = 0.0;                   // main next-token cross-entropy (nats per weighted token;
                                     // with a token objective, the mean −logp over all targets)
  std::vector<double> ce_mtp;        // per MTP module
  double balance = 0.0;              // Σ layers L_bal (already × α)
  int64_t tokens = 0;                // main targets with a nonzero weight
  // Tokens routed to each expert, per MoE block (main layers, then MTP blocks): [n_moe][E]
  std::vector<std::vector<int64_t>> expert_load;
  std::vector<int64_t> moe_layers;   // layer index of each row of expert_load
  size_t tape_bytes = 0;             // activations held for backward at the peak
};

// Gradients accumulate (+=) into g (zero it first for a fresh step). Weights must be float32.
StepResult forward_backward(const ModelConfig& cfg, const ModelWeights& w, ModelGrads& g,
                            const TokenBatch& batch, const ObjectiveOptions& opts);

// Pipeline parallelism: one micro-batch through main layers [first, last) of the model (at
// least one), one stage. The first stage (first = 0) embeds the inputs; the last (last = num_hidden_layers) runs
// the final norm, the heads, the MTP modules and the objective. forward_backward is the single
// stage [0, L) run forward then backward. Weights, gradients and options as forward_backward's
// (a pass keeps the views, so the weights' memory must outlive it); the result holds the stage's part of the step: the
// objective's terms on the last stage, and on every stage its own MoE layers' loads and balance
// terms (StepResult::moe_layers names them).
class StageStep;
class StagePass {
 public:
  StagePass(const ModelConfig& cfg, const ModelWeights& w, TokenBatch batch,
            const ObjectiveOptions& opts, int64_t first_layer, int64_t last_layer);
  ~StagePass();
  StagePass(StagePass&&) noexcept;
  StagePass& operator=(StagePass&&) noexcept;
  // h_in [T, H]: the previous stage's output (null on the first stage). Returns this stage's
  // output for the next one (empty on the last stage, which has run the objective and, unless
  // opts.backward is false, the heads' backward).
  const std::vector<float>& forward(ModelGrads& g, const float* h_in);
  // dh_out [T, H]: the next stage's gradient of this stage's output (null on the last stage).
  // Returns the gradient of this stage's input for the previous stage (empty on the first stage,
  // whose goes into the embedding). Inside a DeferWeightGrads scope (model/weight_grad.h) the
  // weight-gradient products are queued instead of run: a split backward's input-gradient part.
  const std::vector<float>& backward(ModelGrads& g, const float* dh_out);
  StepResult result();
  int64_t tokens() const;  // T: the rows of the hidden states passed between stages

 private:
  std::unique_ptr<StageStep> step_;
};

}  // namespace seek::model
