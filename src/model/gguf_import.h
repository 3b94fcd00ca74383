// A llama.cpp GGUF file of the `deepseek2` architecture as a Seek model: its deepseek2.*
// metadata as a ModelConfig (the struct config.json fills), its tensors as a TensorStore under
// the Hugging Face names, so bind_weights binds them unchanged. Tensors stay in the mapped file
// (routed experts are views into the stacked [n_expert, rows, cols] tensors); only kv_b_proj,
// which current files store split per head (attn_k_b, attn_v_b), is rebuilt into owned memory.
#pragma once
#include <string>

#include "core/gguf.h"
#include "core/safetensors.h"
#include "model/config.h"

namespace seek::model {

// The config from a GGUF header; errors name `source` and the key. Fields GGUF does not store:
//  - topk_method: noaux_tc if the file has router biases (blk.N.exp_probs_b), else
//    group_limited_greedy when expert_group_count > 1, else greedy (llama.cpp's reading);
//  - model_type: deepseek_v3 with sigmoid gating, else deepseek_v2;
//  - rope_scaling mscale = mscale_all_dim = yarn_log_multiplier / 0.1 (the converter writes
//    0.1 · mscale_all_dim and llama.cpp assumes mscale == mscale_all_dim; every release has
//    them equal); the division is done in float32 as llama.cpp does;
//  - moe_layer_freq 1, tie_word_embeddings iff there is no output.weight;
//  - MTP modules (nextn_predict_layers, stored as the last blocks) are not imported:
//    num_hidden_layers = block_count - nextn_predict_layers and num_nextn_predict_layers = 0.
ModelConfig gguf_model_config(const GgufHeader& h, const std::string& source);

struct GgufModel {
  ModelConfig config;
  TensorStore store;
};

// Opens PATH (mapped or read, as `mode`) and maps every tensor to its HF name. A tensor the
// config does not account for is an error naming it (MTP blocks excepted, see above).
GgufModel import_gguf(const std::string& path, LoadMode mode = LoadMode::Mmap,
                      const ProgressFn& progress = {});

}  // namespace seek::model
