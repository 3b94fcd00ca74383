// The model's tensors, bound by their Hugging Face names, as views in their stored dtype.
// Only the tiny vectors (norm gains, router bias) are widened to float32 at load.
#pragma once
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "kernels/matmul.h"
#include "model/config.h"

namespace seek::model {

struct TensorSpec;  // model/tensors.h

using kernels::WeightView;

struct MlaWeights {
  WeightView q_a_proj, q_b_proj;   // [q_lora_rank, H], [nh·(d_h+d_R), q_lora_rank]  (q LoRA)
  std::vector<float> q_a_layernorm;
  WeightView q_proj;               // [nh·(d_h+d_R), H]  (q_lora_rank null, V2-Lite)
  WeightView kv_a_proj_with_mqa;   // [d_c + d_R, H]
  std::vector<float> kv_a_layernorm;  // [d_c]
  WeightView kv_b_proj;            // [nh·(d_h+d_v), d_c], rows per head [k_nope | v]
  WeightView o_proj;               // [H, nh·d_v]
};

struct FfnWeights {  // SwiGLU: down(silu(gate(x)) · up(x))
  WeightView gate_proj, up_proj, down_proj;
};

struct MoeWeights {
  WeightView gate;                             // router [n_routed, H]
  std::vector<float> e_score_correction_bias;  // [n_routed] (noaux_tc), else empty
  std::vector<FfnWeights> experts;             // n_routed
  FfnWeights shared_experts;                   // fused n_shared experts (if n_shared > 0)
};

struct LayerWeights {
  std::vector<float> input_layernorm, post_attention_layernorm;
  MlaWeights attn;
  bool is_moe = false;
  FfnWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
};

// Multi-token prediction module k, stored as layer num_hidden_layers + k.
struct MtpWeights {
  WeightView embed_tokens;           // shared with the main model in the release
  std::vector<float> enorm, hnorm;   // RMSNorm of the next token's embedding / previous hidden
  WeightView eh_proj;                // [H, 2H] over [enorm(emb) ; hnorm(h)]
  LayerWeights block;
  std::vector<float> shared_head_norm;
  WeightView shared_head_head;       // [vocab, H]
};

struct ModelWeights {
  WeightView embed_tokens;  // [vocab, H]
  std::vector<LayerWeights> layers;
  std::vector<float> norm;
  WeightView lm_head;       // [vocab, H] (embed_tokens when tie_word_embeddings)
  std::vector<MtpWeights> mtp;
};

// The stored tensor `name` of `store` as a linear weight [out, in]: F32/BF16/F16, a GGML block
// type, or F8_E4M3 with its 128x128-block weight_scale_inv. A missing tensor, another shape or
// dtype, or FP8 without a matching scale: seek::Error naming the tensor and its file.
WeightView linear_view(const TensorStore& store, const std::string& name, int64_t out, int64_t in);

// Copies a F32/BF16/F16 tensor (numel() floats) into `out`, widened to float32; false, nothing
// written, for any other dtype.
bool copy_as_f32(const Tensor& t, float* out);

// `w` with its float32 linear-layer matrices (attention projections, dense and expert FFNs, the
// MTP modules' eh_proj) rounded to bf16 into `store` (resized; it must outlive the result) and
// viewed there as BF16; embeddings, heads, routers and vectors are the same views as in `w`.
// The forward weights of BF16 mixed-precision training (ObjectiveOptions::precision).
ModelWeights with_bf16_matrices(const ModelWeights& w, std::vector<uint16_t>& store);

// The routed experts one process holds when they are split across processes
// (model/expert_parallel.h): of the main layers' routed experts, [begin, end) (end -1: all);
// `only`: nothing else (an expert rank: the rest of its stage is with its group's rank 0). The
// MTP modules are never split.
struct ExpertShare {
  int64_t begin = 0, end = -1;
  bool only = false;
  bool whole() const { return begin == 0 && end < 0 && !only; }
};
bool in_share(const TensorSpec& t, const ExpertShare& share);

// Binds every tensor of `store` to its place, checking names, shapes and dtypes against the
// config. Missing or unexpected tensors, wrong shapes or dtypes, FP8 weights without a matching
// weight_scale_inv: seek::Error naming the tensor (and its file).
// With first/last: a pipeline stage's tensors only (in_stage), and with a share of the routed
// experts only those (in_share); the rest of w is left empty.
ModelWeights bind_weights(const ModelConfig& cfg, const TensorStore& store, int64_t first = 0,
                          int64_t last = -1, const ExpertShare& share = {});
// Whether a tensor belongs to the stage of main layers [first, last): its layers, the embedding
// on the first stage (and on the last with tied embeddings), the final norm and head on the
// last; never the MTP modules unless the stage is the whole model.
bool in_stage(const TensorSpec& t, const ModelConfig& cfg, int64_t first, int64_t last);

}  // namespace seek::model
