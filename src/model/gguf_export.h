// A Seek model as a llama.cpp deepseek2 GGUF: the metadata convert_hf_to_gguf.py writes for
// DeepSeek-V2/V3 and the tensors under llama.cpp's names (model/gguf_names.h), routed experts
// stacked [n_expert, rows, cols], kv_b_proj split per head into attn_k_b [nh, d_c, d_nope]
// (transposed: the absorbed form current llama.cpp requires) and attn_v_b [nh, d_v, d_c].
// Matrices are written as `dtype` (F32, F16 or BF16; FP8 weights are dequantized first), norm
// gains, the router and its bias as F32, as the converter does. The tokenizer is added by the
// caller (tokenizer/gguf_vocab.h), which then writes the file.
// MTP modules are written only when asked (`mtp`), in llama.cpp's nextn layout (gguf_names.h):
// llama.cpp's deepseek2 graph runs every one of block_count blocks as a main layer, so a file
// with them is for Seek (speculative decoding) and engines that know nextn layers.
#pragma once
#include <string>

#include "core/gguf.h"
#include "model/transformer.h"

namespace seek::model {

void add_config_to_gguf(const ModelConfig& c, GgufWriter& w, bool mtp = false);

// Metadata and tensors of `m`; the tensors are read from m's store while w.write() runs, so `m`
// must outlive that. `name` goes to general.name.
void add_model_to_gguf(const Model& m, DType dtype, const std::string& name, GgufWriter& w,
                       bool mtp = false);

// llama.cpp's Q4_K_M mix (LLAMA_FTYPE_MOSTLY_Q4_K_M, as llama-quantize chooses types without an
// importance matrix): matrices Q4_K, but output.weight Q6_K and the ffn_down matrices (dense,
// shared-expert and stacked experts) Q6_K in the layers use_more_bits picks: the first and last
// eighth of the blocks and every third one between. `n_blocks` is the file's block_count.
inline bool q4_k_m_more_bits(int64_t layer, int64_t n_blocks) {
  return layer < n_blocks / 8 || layer >= 7 * n_blocks / 8 || (layer - n_blocks / 8) % 3 == 2;
}
void add_model_to_gguf_q4_k_m(const Model& m, const std::string& name, GgufWriter& w,
                              bool mtp = false);

}  // namespace seek::model
