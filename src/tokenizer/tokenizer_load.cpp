// Building a Tokenizer from tokenizer.json (+ tokenizer_config.json). Everything not supported is
// rejected with an error naming the file and the field, never silently approximated.
#include <climits>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"

namespace seek::tokenizer {
namespace {

using nlohmann::json;

// j[key] without copying (json::value() returns a copy, which for "model" is the whole vocab).
const json& field(const json& j, const char* key) {
  static const json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                      : std::string();
}

// Normalizers change the text before splitting; none of the ones tokenizers defines (NFC, NFKC,
// Lowercase, Replace, Prepend, ...) is implemented, so only "no normalizer" is accepted.
void check_normalizer(const json& j, const std::string& source) {
  if (j.is_null()) return;
  if (type_of(j) == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
    for (const auto& n : j["normalizers"]) check_normalizer(n, source);
    return;
  }
  fail("{}: unsupported normalizer type \"{}\" (only none or an empty Sequence)", source,
       type_of(j).empty() ? j.dump() : type_of(j));
}

// Decoding is always "invert the byte-level alphabet, then lossy UTF-8", i.e. ByteLevel.
void check_decoder(const json& j, const std::string& source) {
  if (type_of(j) == "ByteLevel") return;
  if (type_of(j) == "Sequence" && j.contains("decoders") && j["decoders"].is_array()) {
    for (const auto& d : j["decoders"]) check_decoder(d, source);
    return;
  }
  fail("{}: unsupported decoder type \"{}\" (only ByteLevel)", source,
       j.is_null() ? "null" : type_of(j));
}

int32_t parse_id(const json& v, const std::string& source, const std::string& field) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= INT32_MAX)
    fail("{}: {} must be a non-negative 32-bit integer id, got {}", source, field, v.dump());
  return int32_t(v.get<int64_t>());
}

std::pair<std::string, std::string> parse_merge(const json& m, size_t rank, const std::string& source) {
  if (m.is_string()) {  // legacy "left right"; byte-level tokens never contain a real space
    const auto& s = m.get_ref<const std::string&>();
    size_t sp = s.find(' ');
    if (sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos)
      return {s.substr(0, sp), s.substr(sp + 1)};
  } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  fail("{}: model.merges[{}] must be \"left right\" or [left, right], got {}", source, rank, m.dump());
}

// tokenizer_config.json writes special tokens as a string or as {"content": ..., ...}.
std::optional<std::string> config_token(const json& config, const char* key, const std::string& source) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  fail("{}: \"{}\" must be a string or {{\"content\": ...}}, got {}", source, key, v.dump());
}

// Ids the post-processor puts before and after a single sequence.
void parse_post_processor(const json& j, std::vector<int32_t>& prefix,
                          std::vector<int32_t>& suffix, const std::string& source) {
  const std::string type = type_of(j);
  auto special_id = [&](const json& pair, const char* field) {
    if (!pair.is_array() || pair.size() != 2) fail("{}: post_processor.{} must be [token, id]", source, field);
    return parse_id(pair[1], source, std::string("post_processor.") + field);
  };
  if (j.is_null() || type == "ByteLevel") return;
  if (type == "Sequence") {
    for (const auto& p : field(j, "processors")) parse_post_processor(p, prefix, suffix, source);
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    prefix.push_back(special_id(field(j, "cls"), "cls"));
    suffix.push_back(special_id(field(j, "sep"), "sep"));
  } else if (type == "TemplateProcessing") {
    bool seen_sequence = false;
    for (const auto& item : field(j, "single")) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken")) {
        std::string name = item["SpecialToken"].value("id", "");
        const json& specials = field(j, "special_tokens");
        if (!specials.is_object() || !specials.contains(name))
          fail("{}: post_processor template uses \"{}\", missing from special_tokens", source, name);
        for (const auto& id : field(specials[name], "ids"))
          (seen_sequence ? suffix : prefix).push_back(parse_id(id, source, "post_processor ids"));
      }
    }
  } else {
    fail("{}: unsupported post_processor type \"{}\"", source, type);
  }
}

}  // namespace

Tokenizer Tokenizer::from_json_text(const std::string& tokenizer_json,
                                    const std::string& tokenizer_config_json,
                                    const std::string& source) {
  try {
    return build(tokenizer_json, tokenizer_config_json, source);
  } catch (const json::exception& e) {  // a field of the wrong JSON type, e.g. "special": "yes"
    fail("{}: {}", source, e.what());
  }
}

Tokenizer Tokenizer::build(const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                           const std::string& source) {
  const json j = parse_json(tokenizer_json, source);
  if (!j.is_object()) fail("{}: top level must be an object", source);
  auto impl = std::make_shared<Impl>();
  Impl& t = *impl;

  const json& model = field(j, "model");
  if (!model.is_object()) fail("{}: missing field \"model\"", source);
  const std::string model_type = type_of(model).empty() && model.contains("merges") ? "BPE" : type_of(model);
  if (model_type != "BPE")
    fail("{}: unsupported model type \"{}\" (only byte-level BPE)", source, model_type);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail("{}: missing field \"model.vocab\" (an object of token -> id)", source);
  if (!model.contains("merges") || !model["merges"].is_array())
    fail("{}: missing field \"model.merges\"", source);
  if (model.value("byte_fallback", false)) fail("{}: model.byte_fallback true is not supported", source);
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    fail("{}: model.dropout is not supported", source);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      fail("{}: model.{} is not supported by byte-level BPE", source, key);
  check_normalizer(field(j, "normalizer"), source);
  check_decoder(field(j, "decoder"), source);
  t.pre = PreTokenizer::from_json(field(j, "pre_tokenizer"), source);
  if (!t.pre.has_byte_level())
    fail("{}: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported", source);

  // The model's vocab first: merges, byte tokens and unk_token refer to it by string.
  const json& vocab = model["vocab"];
  t.token_ids.reserve(vocab.size() + 1024);
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = parse_id(it.value(), source, "model.vocab entries");
    t.token_ids.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  auto vocab_id = [&](const std::string& tok, size_t rank) {
    auto it = t.token_ids.find(tok);
    if (it == t.token_ids.end()) fail("{}: model.merges[{}]: token \"{}\" is not in the vocab", source, rank, tok);
    return it->second;
  };
  const json& merges_json = model["merges"];
  MergeTable merges;
  merges.reserve(merges_json.size());
  for (size_t rank = 0; rank < merges_json.size(); ++rank) {
    auto [left, right] = parse_merge(merges_json[rank], rank, source);
    merges.insert(vocab_id(left, rank), vocab_id(right, rank), int32_t(rank), vocab_id(left + right, rank));
  }
  Bpe::Config bc;
  for (int b = 0; b < 256; ++b) {
    auto it = t.token_ids.find(byte_level::encode(std::string(1, char(b))));
    bc.byte_ids[size_t(b)] = it == t.token_ids.end() ? -1 : it->second;
  }
  if (field(model, "unk_token").is_string()) {
    auto it = t.token_ids.find(model["unk_token"].get<std::string>());
    if (it == t.token_ids.end()) fail("{}: model.unk_token is not in the vocab", source);
    bc.unk_id = it->second;
  }
  bc.ignore_merges = model.value("ignore_merges", false);
  if (bc.ignore_merges)
    for (const auto& [tok, id] : t.token_ids)
      if (auto raw = byte_level::decode(tok)) bc.whole_pieces[*raw] = id;
  t.bpe = Bpe(std::move(bc), std::move(merges));

  // Added tokens on top: an added token's content and flags win for its id.
  std::vector<AddedToken> added;
  for (const auto& a : field(j, "added_tokens")) {
    AddedToken at;
    at.id = parse_id(field(a, "id"), source, "added_tokens[].id");
    if (!field(a, "content").is_string()) fail("{}: added_tokens[].content missing", source);
    at.content = a["content"].get<std::string>();
    at.special = a.value("special", false);
    at.normalized = a.value("normalized", !at.special);
    at.lstrip = a.value("lstrip", false);
    at.rstrip = a.value("rstrip", false);
    if (a.value("single_word", false))
      fail("{}: added token \"{}\" has single_word true, which is not supported", source, at.content);
    added.push_back(at);
    max_id = std::max(max_id, at.id);
  }
  const size_t n = size_t(max_id + 1);
  t.tokens.assign(n, {});
  t.has_token.assign(n, 0);
  t.special.assign(n, 0);
  for (const auto& [tok, id] : t.token_ids) {
    t.tokens[size_t(id)] = tok;
    t.has_token[size_t(id)] = 1;
  }
  for (const AddedToken& a : added) {
    t.tokens[size_t(a.id)] = a.content;
    t.has_token[size_t(a.id)] = 1;
    t.special[size_t(a.id)] = a.special;
    t.token_ids[a.content] = a.id;
  }
  t.added = AddedTokenMatcher(added);

  // Decoding table. tokenizers' ByteLevel decoder maps a token's characters back to bytes if
  // every character is in the byte-level alphabet and otherwise keeps the token's UTF-8 as is
  // (that is how "<｜User｜>" comes out verbatim); added tokens go through the same rule.
  t.byte_off.assign(n + 1, 0);
  for (size_t id = 0; id < n; ++id) {
    t.byte_off[id] = uint32_t(t.bytes.size());
    if (!t.has_token[id]) continue;
    auto raw = byte_level::decode(t.tokens[id]);
    t.bytes += raw ? *raw : t.tokens[id];
  }
  t.byte_off[n] = uint32_t(t.bytes.size());

  // Special tokens around the text: see tokenizer.h for the rule.
  const std::string config_source =
      source.ends_with("tokenizer.json") ? source.substr(0, source.size() - 14) + "tokenizer_config.json"
                                         : source + " (tokenizer_config)";
  const json config = tokenizer_config_json.empty() ? json::object() : parse_json(tokenizer_config_json, config_source);
  if (!config.is_object()) fail("{}: top level must be an object", config_source);
  auto resolve = [&](const char* key) -> int32_t {
    auto tok = config_token(config, key, config_source);
    if (!tok) return -1;
    auto it = t.token_ids.find(*tok);
    if (it == t.token_ids.end()) fail("{}: {} \"{}\" is not a token of {}", config_source, key, *tok, source);
    return it->second;
  };
  t.bos = resolve("bos_token");
  t.eos = resolve("eos_token");
  if (config.contains("add_bos_token") || config.contains("add_eos_token")) {
    if (json_get_or<bool>(config, "add_bos_token", false, config_source)) {
      if (t.bos < 0) fail("{}: add_bos_token is true but bos_token is not set", config_source);
      t.prefix_ids.push_back(t.bos);
    }
    if (json_get_or<bool>(config, "add_eos_token", false, config_source)) {
      if (t.eos < 0) fail("{}: add_eos_token is true but eos_token is not set", config_source);
      t.suffix_ids.push_back(t.eos);
    }
  } else {
    parse_post_processor(field(j, "post_processor"), t.prefix_ids, t.suffix_ids, source);
  }
  for (int32_t id : t.prefix_ids)
    if (size_t(id) >= n || !t.has_token[size_t(id)]) fail("{}: post-processor id {} has no token", source, id);
  for (int32_t id : t.suffix_ids)
    if (size_t(id) >= n || !t.has_token[size_t(id)]) fail("{}: post-processor id {} has no token", source, id);

  Tokenizer tok;
  tok.impl_ = std::move(impl);
  return tok;
}

}  // namespace seek::tokenizer
