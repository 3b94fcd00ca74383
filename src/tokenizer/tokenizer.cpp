#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace seek::tokenizer {

Tokenizer Tokenizer::load(const std::string& model_dir) {
  const std::string json_path = model_dir + "/tokenizer.json";
  const std::string config_path = model_dir + "/tokenizer_config.json";
  std::string config = file_exists(config_path) ? read_file(config_path) : std::string();
  return from_json_text(read_file(json_path), config, json_path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (!valid_utf8(text)) fail("Tokenizer::encode: input is not valid UTF-8");
  const Impl& t = *impl_;
  // Scratch space reused across calls on this thread, so steady-state encoding does not allocate
  // per piece.
  thread_local std::vector<Segment> segments;
  thread_local PreTokenizer::Workspace ws;

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), t.prefix_ids.begin(), t.prefix_ids.end());
  t.added.split(text, segments);
  for (const Segment& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    t.pre.split(seg.text, ws);
    for (std::string_view piece : ws.pieces) t.bpe.encode(piece, ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), t.suffix_ids.begin(), t.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  // Join every token's bytes first and repair UTF-8 once: a character split across tokens only
  // decodes when its pieces meet (tokenizers' ByteLevel decoder does the same).
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (!has_token(id)) continue;
    if (skip_special_tokens && t.special[size_t(id)]) continue;
    bytes += id_to_bytes(id);
  }
  return unicode::decode_lossy(bytes);
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->token_ids.find(token);
  if (it == impl_->token_ids.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  return has_token(id) ? impl_->tokens[size_t(id)] : std::string();
}

size_t Tokenizer::vocab_size() const { return impl_->tokens.size(); }

bool Tokenizer::has_token(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->tokens.size() && impl_->has_token[size_t(id)];
}

bool Tokenizer::is_special(int32_t id) const { return has_token(id) && impl_->special[size_t(id)]; }

std::string_view Tokenizer::id_to_bytes(int32_t id) const {
  if (!has_token(id)) return {};
  const Impl& t = *impl_;
  size_t b = t.byte_off[size_t(id)], e = t.byte_off[size_t(id) + 1];
  return std::string_view(t.bytes).substr(b, e - b);
}

}  // namespace seek::tokenizer
