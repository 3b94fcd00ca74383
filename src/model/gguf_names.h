// The deepseek2 tensor names of llama.cpp's GGUF files and their Hugging Face counterparts, in
// one table that import and export share.
//
//   token_embd.weight               model.embed_tokens.weight
//   output_norm.weight              model.norm.weight
//   output.weight                   lm_head.weight (absent: tied to token_embd)
//   blk.N.attn_norm ... ffn_*_shexp model.layers.N.<kLayerNames[i].hf>
//   blk.N.ffn_{gate,up,down}_exps   model.layers.N.mlp.experts.E.{gate,up,down}_proj, stacked
//                                   [n_expert, rows, cols] (ne = {cols, rows, n_expert})
//   blk.N.attn_k_b / attn_v_b       kv_b_proj split per head (see gguf_import.cpp), or
//   blk.N.attn_kv_b                 kv_b_proj as is (files from before the split)
//   blk.L+k.nextn.*                 MTP module k (model.layers.L+k.{eh_proj,enorm,hnorm,...}),
//                                   L = num_hidden_layers; block_count counts them and
//                                   nextn_predict_layers says how many (llama.cpp's layout)
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace seek::model {

struct GgufLayerName {
  const char* gguf;  // after "blk.N."
  const char* hf;    // after "model.layers.N."
};

inline constexpr GgufLayerName kGgufLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q_a.weight", "self_attn.q_a_proj.weight"},
    {"attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"},
    {"attn_q_b.weight", "self_attn.q_b_proj.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"},
    {"attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"},
    {"attn_kv_b.weight", "self_attn.kv_b_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"ffn_gate_inp.weight", "mlp.gate.weight"},
    {"exp_probs_b.bias", "mlp.gate.e_score_correction_bias"},
    {"ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"},
    {"ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"},
    {"ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"},
    // An MTP module's own tensors (its block has the names above), as llama.cpp's nextn layers.
    {"nextn.eh_proj.weight", "eh_proj.weight"},
    {"nextn.enorm.weight", "enorm.weight"},
    {"nextn.hnorm.weight", "hnorm.weight"},
    {"nextn.embed_tokens.weight", "embed_tokens.weight"},
    {"nextn.shared_head_head.weight", "shared_head.head.weight"},
    {"nextn.shared_head_norm.weight", "shared_head.norm.weight"},
};

// Stacked routed experts: GGUF suffix for an HF projection name ("gate_proj" ...).
inline constexpr GgufLayerName kGgufExpertNames[] = {
    {"ffn_gate_exps.weight", "gate_proj.weight"},
    {"ffn_up_exps.weight", "up_proj.weight"},
    {"ffn_down_exps.weight", "down_proj.weight"},
};

// An HF name of a non-expert tensor -> its GGUF name; nullopt for names without one (routed
// experts, kv_b_proj's split halves are handled by the callers).
std::optional<std::string> gguf_name_of(std::string_view hf_name);

}  // namespace seek::model
