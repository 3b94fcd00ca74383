// The tokenizer and chat template of a llama.cpp GGUF file (tokenizer.ggml.*: model "gpt2",
// tokens, token_type, merges, pre "deepseek-v3" | "deepseek-llm", BOS/EOS/padding ids,
// add_bos/add_eos; tokenizer.chat_template), read and written.
//
// Token types: 3 (control) are added tokens with "special": true, 4 (user defined) added
// tokens without it; both are cut out of the text before BPE, as tokenizer.json's added_tokens
// are. 5 (unused) ids are left without a token.
#pragma once
#include <string>

#include "core/gguf.h"
#include "tokenizer/tokenizer.h"

namespace seek::tokenizer {

// Throws seek::Error naming `source` and the key for missing or unsupported metadata.
Tokenizer tokenizer_from_gguf(const GgufHeader& h, const std::string& source);
std::string chat_template_from_gguf(const GgufHeader& h, const std::string& source);

// Adds MODEL_DIR's tokenizer (tokenizer.json, tokenizer_config.json, chat template) to `w`,
// with the token list padded to `vocab_size` (the model's) when that is larger.
void add_tokenizer_to_gguf(const std::string& model_dir, int64_t vocab_size, GgufWriter& w);

}  // namespace seek::tokenizer
