// A model whose MTP module drafts well, for testing and benchmarking speculative decoding
// without a trained checkpoint. From a BF16 checkpoint with one MTP module: every block's output
// projections (o_proj, down_proj) scaled by `eps`, so the next token depends mostly on the
// current one (a bigram model, plus eps times attention and MoE), and an MTP module that sees
// only the next token's embedding (eh_proj = [I | 0], enorm = 1) and predicts through the main
// model's final norm and head: its draft is the bigram part of what the main model will say.
// Small eps: most drafts are accepted; eps = 1: the original blocks, most are rejected. The
// tensors keep their shapes and dtypes, so a step reads exactly as many bytes as the original.
#pragma once
#include <string>

namespace seek::tools {

// Writes config.json, model.safetensors and any tokenizer files of `src` into `dst` (created).
// Throws seek::Error for a checkpoint without an MTP module or with non-BF16 matrices.
void write_draftable_model(const std::string& src, const std::string& dst, float eps);

}  // namespace seek::tools
