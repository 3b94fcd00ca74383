#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace seek::tokenizer {

Tokenizer Tokenizer::load(const std::string& model_dir) {
  if (is_gguf_file(model_dir))
    return tokenizer_from_gguf(GgufFile::open(model_dir).header(), model_dir);
  const std::string json_path = model_dir + "/tokenizer.json";
  const std::string config_path = model_dir + "/tokenizer_config.json";
  std::string config = file_exists(config_path) ? read_file(config_path) : std::string();
  return from_json_text(read_file(json_path), config, json_path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  EncodeOptions o;
  o.add_special_tokens = add_special_tokens;
  return encode(text, o);
}

namespace {

// Segments of `text` with added tokens cut out of everything but the literal spans, then plain
// neighbours joined into one view (they are contiguous in `text`): pre-tokenization must see
// the same pieces as if the spans had been split like the rest.
void split_segments(const AddedTokenMatcher& added, std::string_view text, const TextSpans& literal,
                    std::vector<Segment>& out) {
  if (literal.empty()) {
    added.split(text, out);
    return;
  }
  out.clear();
  std::vector<Segment> part;
  auto plain = [&](std::string_view v) {
    if (v.empty()) return;
    if (!out.empty() && out.back().id < 0 && out.back().text.data() + out.back().text.size() == v.data())
      out.back().text = std::string_view(out.back().text.data(), out.back().text.size() + v.size());
    else
      out.push_back({v, -1});
  };
  auto matched = [&](std::string_view v) {
    if (v.empty()) return;
    added.split(v, part);
    for (const Segment& s : part) {
      if (s.id >= 0) out.push_back(s);
      else plain(s.text);
    }
  };
  size_t at = 0;
  for (const auto& [b, e] : literal) {
    if (b < at || e < b || e > text.size())
      fail("Tokenizer::encode: literal spans must be sorted, disjoint and inside the text");
    matched(text.substr(at, b - at));
    plain(text.substr(b, e - b));
    at = e;
  }
  matched(text.substr(at));
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& o) const {
  if (!valid_utf8(text)) fail("Tokenizer::encode: input is not valid UTF-8");
  const Impl& t = *impl_;
  // Scratch space reused across calls on this thread, so steady-state encoding does not allocate
  // per piece.
  thread_local std::vector<Segment> segments;
  thread_local PreTokenizer::Workspace ws;

  std::vector<int32_t> ids;
  ids.reserve(std::min(text.size() / 3, o.max_tokens) + 4);
  if (o.add_special_tokens) ids.insert(ids.end(), t.prefix_ids.begin(), t.prefix_ids.end());
  split_segments(t.added, text, o.literal, segments);
  for (const Segment& seg : segments) {
    if (ids.size() > o.max_tokens) break;
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    // A plain segment far longer than the limit: count the tokens of a prefix first (all its
    // pieces but the last, which the cut may have shortened, are pieces of the whole text).
    // Ordinary text is over the limit within it, and only the prefix is split; otherwise the
    // whole segment is encoded below, so an accepted text never depends on the cut.
    const size_t window = o.max_tokens < text.size() / 32 ? (o.max_tokens + 2) * 16 : text.size();
    if (seg.text.size() > window) {
      size_t cut = window;
      while (cut > 0 && (uint8_t(seg.text[cut]) & 0xC0) == 0x80) --cut;  // a character boundary
      t.pre.split(seg.text.substr(0, cut), ws);
      const size_t before = ids.size();
      for (size_t i = 0; i + 1 < ws.pieces.size() && ids.size() <= o.max_tokens; ++i)
        t.bpe.encode(ws.pieces[i], ids);
      if (ids.size() > o.max_tokens) break;
      ids.resize(before);
    }
    t.pre.split(seg.text, ws);
    for (std::string_view piece : ws.pieces) {
      t.bpe.encode(piece, ids);
      if (ids.size() > o.max_tokens) break;
    }
  }
  if (o.add_special_tokens) ids.insert(ids.end(), t.suffix_ids.begin(), t.suffix_ids.end());
  // The scratch lives as long as the thread: after a huge text (a 7 MB prompt splits into
  // millions of pieces) give it back instead of keeping it per server worker.
  constexpr size_t kKeep = size_t(1) << 16;
  if (segments.capacity() > kKeep) std::vector<Segment>().swap(segments);
  if (ws.pieces.capacity() > kKeep || ws.next.capacity() > kKeep || ws.matches.capacity() > kKeep ||
      ws.segments.capacity() > kKeep || ws.owned.size() > kKeep)
    ws = PreTokenizer::Workspace();
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
