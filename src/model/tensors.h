// The checkpoint's tensors: what a DeepSeek checkpoint of a given config holds (HF name, shape,
// role, layer and expert), and where each one lives in ModelWeights and ModelGrads. This is the
// only place the tensor names are spelled. The loader, the random-model generator, the training
// parameters and gradients and the checkpoint writer all walk this one list, so they cannot
// disagree about a tensor.
#pragma once
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/grads.h"
#include "model/weights.h"

namespace seek::model {

enum class TensorRole {
  Embedding,   // embed_tokens [vocab, H]
  Head,        // lm_head, an MTP module's shared_head.head [vocab, H]
  Norm,        // an RMSNorm gain [n]
  Linear,      // a projection [out, in] (attention, FFN, experts, MTP eh_proj)
  Router,      // mlp.gate [n_routed, H]
  RouterBias,  // mlp.gate.e_score_correction_bias [n_routed] (noaux_tc): set by load balancing
};

// Two orders of the same tensors. The files are read by name, so order only matters where a
// buffer follows it: Seek's training checkpoints lay out Params (and the optimizer moments in
// training_state.bin) in Training order, which older checkpoints pin.
enum class TensorOrder {
  Release,   // DeepSeek's files (and make-model's): per block input_layernorm, self_attn,
             // post_attention_layernorm, mlp; MTP module: embed_tokens, enorm, hnorm, eh_proj,
             // block, shared_head.norm, shared_head.head
  Training,  // per block both layer norms first; MTP module: enorm, hnorm, eh_proj,
             // shared_head.norm, block, then the copies embed_tokens and shared_head.head
};

struct TensorSpec {
  std::string name;  // HF name, e.g. model.layers.3.self_attn.kv_b_proj.weight
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::Linear;
  int64_t layer = -1;   // model.layers.{layer} (MTP module k: num_hidden_layers + k); else -1
  int64_t expert = -1;  // routed expert index; -1 for everything else (shared experts too)
  bool mtp = false;     // part of an MTP module
  bool fp8 = false;     // F8_E4M3 + `name`_scale_inv in the FP8 release (*_proj under
                        // self_attn / mlp; not the router, eh_proj, embeddings or heads)
  bool residual_out = false;  // o_proj / down_proj: writes into the residual stream
  // An MTP module's copy of the shared embedding or head: the main tensor it equals
  // (model.embed_tokens.weight, lm_head.weight, or the embedding when tied). Not a parameter
  // of its own: the model reads the main tensor and its gradient lands there.
  std::string tied_to;

  int64_t numel() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  }
  int64_t fan_in() const { return shape.size() == 2 ? shape[1] : 0; }  // in_features
  bool trainable() const { return role != TensorRole::RouterBias; }  // by gradients
  bool decay() const { return shape.size() == 2; }  // weight decay: matrices, not gains
};

// Where a tensor lives in the models handed to for_each_tensor (null: not handed, or no slot:
// ModelGrads has none for the router bias and the MTP copies).
struct TensorSlots {
  WeightView* view = nullptr;         // matrices (ModelWeights)
  std::vector<float>* vec = nullptr;  // norm gains, router bias (ModelWeights)
  float** grad = nullptr;             // ModelGrads
};

using TensorVisitor = std::function<void(const TensorSpec&, const TensorSlots&)>;

// Calls fn for every tensor of `c` in `order`, with its slots in `w` and `g` (either may be
// null). Sizes their layers / experts / MTP vectors and sets is_moe. Afterwards the views that
// share another tensor and were left empty by fn are pointed at it: lm_head at embed_tokens
// when tie_word_embeddings, an MTP module's embed_tokens / shared_head_head at the main ones
// (likewise the gradient lm_head).
void for_each_tensor(const ModelConfig& c, TensorOrder order, ModelWeights* w, ModelGrads* g,
                     const TensorVisitor& fn);

// The list alone.
std::vector<TensorSpec> model_tensors(const ModelConfig& c,
                                      TensorOrder order = TensorOrder::Release);

}  // namespace seek::model
