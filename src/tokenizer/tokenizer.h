// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (DeepSeek-V3/R1, GPT-2,
// Llama 3, ... style), reproducing the `tokenizers` Rust library id for id.
//
// encode:  added-token split -> (identity) normalizer -> pre-tokenizer Splits -> BPE per piece
//          -> BOS/EOS. tests/fixtures/tokenizer/README.md walks through each step for DeepSeek-V3.
// decode:  ids -> token bytes (byte-level alphabet inverted) -> one lossy UTF-8 decode.
//
// Special tokens around the text (add_special_tokens=true) follow `transformers`: if
// tokenizer_config.json has "add_bos_token"/"add_eos_token" (LlamaTokenizerFast and friends),
// those decide; otherwise the tokenizer.json post_processor does (TemplateProcessing single
// template, RobertaProcessing, BertProcessing; ByteLevel adds nothing).
//
// A Tokenizer is cheap to copy (shared immutable state) and safe to use from many threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seek::tokenizer {

// Byte ranges [begin, end) of an encoded text, sorted and disjoint.
using TextSpans = std::vector<std::pair<size_t, size_t>>;

struct EncodeOptions {
  bool add_special_tokens = false;
  // Ranges of the text read as plain text: added-token strings inside them are not cut out, so
  // "<｜Assistant｜>" there becomes the ids of its characters (a chat message's content cannot
  // forge the template's markers). Text outside them is encoded exactly as encode() does, and
  // a span is joined to its plain neighbours before pre-tokenization, so text without
  // added-token strings gets the same ids either way.
  TextSpans literal;
  // Stops once the ids outnumber this (the result then holds max_tokens + 1 or a few more ids):
  // enough to refuse an over-long prompt without encoding all of it.
  size_t max_tokens = std::numeric_limits<size_t>::max();
};

class Tokenizer {
 public:
  // Reads MODEL_DIR/tokenizer.json and, if present, MODEL_DIR/tokenizer_config.json; or, when
  // MODEL_DIR is a .gguf file, its tokenizer.ggml.* metadata (tokenizer/gguf_vocab.h).
  static Tokenizer load(const std::string& model_dir);
  // `tokenizer_config_json` may be empty (no config). `source` names the input in errors.
  static Tokenizer from_json_text(const std::string& tokenizer_json,
                                  const std::string& tokenizer_config_json,
                                  const std::string& source);

  // Text must be valid UTF-8 (tokenizers takes Rust strings); otherwise throws seek::Error
  // "... input is not valid UTF-8". Added-token strings in the text always become their ids.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const;

  // Ids without a token are dropped; skip_special_tokens drops added tokens marked "special".
  // Invalid UTF-8 in the joined bytes becomes U+FFFD per maximal subpart.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  int32_t bos_id() const;  // -1 if the config names no BOS token
  int32_t eos_id() const;  // -1 if the config names no EOS token
  std::optional<int32_t> token_to_id(std::string_view token) const;  // raw token string
  std::string id_to_token(int32_t id) const;  // raw token string ("Ġthe"), "" if no token
  size_t vocab_size() const;                  // highest id + 1
  bool has_token(int32_t id) const;
  bool is_special(int32_t id) const;  // an added token with "special": true
  // The bytes `id` contributes to decoded text before UTF-8 repair ("" if no token).
  std::string_view id_to_bytes(int32_t id) const;

 private:
  Tokenizer() = default;  // only load() and from_json_text() make one
  static Tokenizer build(const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                         const std::string& source);
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace seek::tokenizer
