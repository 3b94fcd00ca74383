// Gradient buffers mirroring ModelWeights: one float32 pointer per trainable tensor, laid out
// like the weight ([out, in] for linear weights). Backward passes accumulate (+=) into them; a
// null pointer means "no gradient wanted" for that tensor. The router's e_score_correction_bias
// has none: it only selects experts and is trained by the balancing rule, not by gradients.
#pragma once
#include <vector>

namespace seek::model {

struct MlaGrads {
  float *q_a_proj = nullptr, *q_a_layernorm = nullptr, *q_b_proj = nullptr, *q_proj = nullptr;
  float *kv_a_proj_with_mqa = nullptr, *kv_a_layernorm = nullptr, *kv_b_proj = nullptr;
  float *o_proj = nullptr;
};

struct FfnGrads {
  float *gate_proj = nullptr, *up_proj = nullptr, *down_proj = nullptr;
};

struct MoeGrads {
  float* gate = nullptr;
  std::vector<FfnGrads> experts;
  FfnGrads shared_experts;
};

struct LayerGrads {
  float *input_layernorm = nullptr, *post_attention_layernorm = nullptr;
  MlaGrads attn;
  FfnGrads mlp;
  MoeGrads moe;
};

struct MtpGrads {
  float *enorm = nullptr, *hnorm = nullptr, *eh_proj = nullptr, *shared_head_norm = nullptr;
  LayerGrads block;
};

struct ModelGrads {
  float* embed_tokens = nullptr;  // MTP modules share it: their embedding gradients land here
  std::vector<LayerGrads> layers;
  float* norm = nullptr;
  float* lm_head = nullptr;       // shared head of the MTP modules too
  std::vector<MtpGrads> mtp;
};

}  // namespace seek::model
