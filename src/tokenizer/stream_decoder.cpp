#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace seek::tokenizer {

std::string StreamDecoder::push(int32_t id) {
  // Same filtering as Tokenizer::decode: ids without a token and skipped specials contribute no
  // bytes, so they cannot split a character either.
  if (!tok_.has_token(id) || (skip_special_ && tok_.is_special(id))) return {};
  pending_ += tok_.id_to_bytes(id);
  std::string out;
  size_t used = unicode::decode_lossy_append(out, pending_, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::decode_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace seek::tokenizer
