// Incremental detokenizer for generation: text comes out as ids arrive, and the concatenation
// of every push() and the final flush() equals Tokenizer::decode() of all the ids.
//
// Byte-level tokens can end in the middle of a UTF-8 character (emoji and rare CJK are often
// split over 2-4 tokens). push() holds back a trailing sequence that is a valid but incomplete
// prefix of a character and emits everything before it; bytes that can never become valid are
// emitted as U+FFFD immediately, by the same maximal-subpart rule as decode(). This works because
// that rule is prefix-stable: the decoding of a byte depends only on the bytes up to the end of
// its own maximal subpart, never on bytes after it.
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace seek::tokenizer {

class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special_tokens = false)
      : tok_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

  // Text completed by `id` (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back, decoded lossily; the decoder is then empty and reusable.
  std::string flush();
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace seek::tokenizer
