// Byte-level BPE tokenizer training (Sennrich et al.; GPT-2's byte-level variant): text is cut
// into pieces by DeepSeek-V3's pre-tokenizer regexes, every piece starts as its bytes, and the
// most frequent adjacent pair is merged until the vocabulary is full. The result is a Hugging
// Face tokenizer.json (model BPE, byte-level alphabet, merges in order) plus a
// tokenizer_config.json with DeepSeek-V3's chat template, so `seek chat`, `seek run` and HF
// tokenizers load it as they load DeepSeek's own.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace seek::train {

// Added tokens: ids 0 (BOS) and 1 (EOS) like DeepSeek's; the chat tokens at the end.
inline const char* const kBos = "<｜begin▁of▁sentence｜>";
inline const char* const kEos = "<｜end▁of▁sentence｜>";
inline const char* const kPad = "<｜▁pad▁｜>";
inline const char* const kUser = "<｜User｜>";
inline const char* const kAssistant = "<｜Assistant｜>";

struct BpeResult {
  nlohmann::json tokenizer;         // tokenizer.json
  nlohmann::json tokenizer_config;  // tokenizer_config.json
  int64_t vocab_size = 0;           // all ids, added tokens included
  int64_t merges = 0;
};

// Trains on `texts` (each valid UTF-8; checked) up to `vocab_size` ids in total. Throws
// seek::Error for an empty corpus or a vocab_size below the 256 bytes + added tokens.
BpeResult train_bpe(const std::vector<std::string>& texts, int64_t vocab_size,
                    const std::string& chat_template);

// DeepSeek-V3's pre_tokenizer (digits in groups of ≤3, CJK runs, words/punctuation/space).
nlohmann::json deepseek_pretokenizer();

}  // namespace seek::train
