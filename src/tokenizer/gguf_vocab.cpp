// Tokenizers in GGUF metadata (tokenizer.ggml.*), both ways. Import builds the tokenizer.json
// and tokenizer_config.json a Hugging Face directory would hold and hands them to the one
// tokenizer.json reader, so a GGUF tokenizer encodes exactly as the JSON one does.
#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/chat_template.h"

namespace seek::tokenizer {
namespace {

using nlohmann::json;

// llama_token_type
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// tokenizer.json's pre_tokenizer of DeepSeek-V3 / R1 (tests/fixtures/tokenizer/deepseek-v3),
// llama.cpp's "deepseek-v3".
const char* const kDeepseekV3Pre = R"json({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})json";

// DeepSeek-LLM / V2 (llama.cpp's "deepseek-llm"): its tokenizer.json splits, in this order,
// each Isolated, then ByteLevel without its own regex. (No V2 tokenizer is among the fixtures:
// these are the regexes llama.cpp's llama-vocab.cpp lists for this pre-tokenizer. The code points
// that Unicode normalization would replace by a canonical equivalent are written as escapes.)
json deepseek_llm_pre() {
  static const char* const kRegexes[] = {
      "[\r\n]",
      "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
      "ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
      "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
      "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
      "\\s+$",
      "[一-龥ࠀ-一가-퟿]+",
      "\\p{N}+",
  };
  json steps = json::array();
  for (const char* r : kRegexes)
    steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", "Isolated"},
                     {"invert", false}});
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                   {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

json pre_tokenizer_named(const std::string& pre, const std::string& source) {
  if (pre == "deepseek-v3") return json::parse(kDeepseekV3Pre);
  if (pre == "deepseek-llm") return deepseek_llm_pre();
  fail("{}: tokenizer.ggml.pre \"{}\" is not supported (deepseek-v3 or deepseek-llm)", source, pre);
}

const GgufValue& need(const GgufHeader& h, const char* key, GgufType type, GgufType elem,
                      const std::string& source) {
  const GgufValue* v = h.find(key);
  if (!v) fail("{}: missing metadata {} (the file has no tokenizer?)", source, key);
  if (v->type != type || (type == GgufType::Array && v->elem != elem))
    fail("{}: metadata {} has type {}, expected {}", source, key, gguf_type_name(v->type),
         gguf_type_name(type));
  return *v;
}

int64_t id_or(const GgufHeader& h, const char* key, int64_t fallback, const std::string& source) {
  const GgufValue* v = h.find(key);
  if (!v) return fallback;
  if (!v->is_integer()) fail("{}: metadata {} must be an integer", source, key);
  return v->i;
}

}  // namespace

Tokenizer tokenizer_from_gguf(const GgufHeader& h, const std::string& source) {
  const GgufValue& model = need(h, "tokenizer.ggml.model", GgufType::String, GgufType::U32, source);
  if (model.s != "gpt2")
    fail("{}: tokenizer.ggml.model \"{}\" is not supported (only gpt2: byte-level BPE)", source, model.s);
  const std::vector<std::string>& tokens =
      need(h, "tokenizer.ggml.tokens", GgufType::Array, GgufType::String, source).strs;
  const std::vector<std::string>& merges =
      need(h, "tokenizer.ggml.merges", GgufType::Array, GgufType::String, source).strs;
  const GgufValue* types = h.find("tokenizer.ggml.token_type");
  if (types && (types->type != GgufType::Array || types->ints.size() != tokens.size()))
    fail("{}: tokenizer.ggml.token_type must be an integer array as long as the tokens", source);
  const GgufValue* pre = h.find("tokenizer.ggml.pre");
  if (!pre || pre->type != GgufType::String) fail("{}: missing metadata tokenizer.ggml.pre", source);

  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types ? types->ints[id] : kNormal;
    if (type == kUnused) continue;  // padding up to the model's vocabulary
    vocab[tokens[id]] = id;
    if (type == kControl || type == kUserDefined)
      added.push_back({{"id", id}, {"content", tokens[id]}, {"special", type == kControl}});
  }
  json tj = {{"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", merges}}},
             {"added_tokens", std::move(added)},
             {"normalizer", nullptr},
             {"pre_tokenizer", pre_tokenizer_named(pre->s, source)},
             {"decoder", {{"type", "ByteLevel"}}},
             {"post_processor", nullptr}};
  json config = json::object();
  auto token_of = [&](const char* key) -> std::optional<std::string> {
    const int64_t id = id_or(h, key, -1, source);
    if (id < 0) return std::nullopt;
    if (size_t(id) >= tokens.size()) fail("{}: {} {} is not a token id", source, key, id);
    return tokens[size_t(id)];
  };
  if (auto t = token_of("tokenizer.ggml.bos_token_id")) config["bos_token"] = *t;
  if (auto t = token_of("tokenizer.ggml.eos_token_id")) config["eos_token"] = *t;
  if (auto t = token_of("tokenizer.ggml.padding_token_id")) config["pad_token"] = *t;
  // llama.cpp's defaults for gpt2-type vocabularies: BOS added (if there is one), EOS not.
  config["add_bos_token"] =
      id_or(h, "tokenizer.ggml.add_bos_token", config.contains("bos_token") ? 1 : 0, source) != 0;
  config["add_eos_token"] = id_or(h, "tokenizer.ggml.add_eos_token", 0, source) != 0;
  return Tokenizer::from_json_text(tj.dump(), config.dump(), source);
}

std::string chat_template_from_gguf(const GgufHeader& h, const std::string& source) {
  const GgufValue* v = h.find("tokenizer.chat_template");
  if (!v) fail("{}: no tokenizer.chat_template", source);
  if (v->type != GgufType::String) fail("{}: tokenizer.chat_template must be a string", source);
  return v->s;
}

void add_tokenizer_to_gguf(const std::string& model_dir, int64_t vocab_size, GgufWriter& w) {
  const std::string path = model_dir + "/tokenizer.json";
  const json j = parse_json(read_file(path), path);
  const Tokenizer tok = Tokenizer::load(model_dir);

  std::string pre;
  const json& pj = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  if (pj == json::parse(kDeepseekV3Pre)) pre = "deepseek-v3";
  else if (pj == deepseek_llm_pre()) pre = "deepseek-llm";
  else fail("{}: its pre_tokenizer is neither DeepSeek-V3's nor DeepSeek-LLM's; GGUF names only "
            "known pre-tokenizers (tokenizer.ggml.pre)", path);
  // Every id up to the larger of the tokenizer's and the model's vocabulary; ids without a
  // token are "[PADn]" of type unused, as convert_hf_to_gguf.py writes them.
  const int64_t n = std::max<int64_t>(int64_t(tok.vocab_size()), vocab_size);
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int64_t> types(static_cast<size_t>(n), kNormal);
  for (int64_t id = 0; id < n; ++id) {
    if (!tok.has_token(int32_t(id)) || id >= int64_t(tok.vocab_size())) {
      tokens[size_t(id)] = "[PAD" + std::to_string(id) + "]";
      types[size_t(id)] = kUnused;
      continue;
    }
    tokens[size_t(id)] = tok.id_to_token(int32_t(id));
  }
  for (const json& a : j.value("added_tokens", json::array())) {
    const int64_t id = a.at("id").get<int64_t>();
    types[size_t(id)] = a.value("special", false) ? kControl : kUserDefined;
  }
  std::vector<std::string> merges;
  for (const json& m : j.at("model").at("merges"))
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());

  w.set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::str(pre));
  w.set("tokenizer.ggml.tokens", GgufValue::str_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::I32, std::move(types)));
  w.set("tokenizer.ggml.merges", GgufValue::str_array(std::move(merges)));
  if (tok.bos_id() >= 0) w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(tok.bos_id())));
  if (tok.eos_id() >= 0) w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(tok.eos_id())));
  const std::string config_path = model_dir + "/tokenizer_config.json";
  const json config = file_exists(config_path) ? parse_json(read_file(config_path), config_path) : json::object();
  if (config.contains("pad_token") && !config["pad_token"].is_null()) {
    const json& p = config["pad_token"];
    const std::string s = p.is_string() ? p.get<std::string>() : p.value("content", "");
    if (auto id = tok.token_to_id(s)) w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(uint32_t(*id)));
  }
  // What encode(text, add_special_tokens=true) puts around the text, as llama.cpp's two flags.
  const std::vector<int32_t> with = tok.encode("a", true), without = tok.encode("a", false);
  const auto at = std::search(with.begin(), with.end(), without.begin(), without.end());
  if (at == with.end()) fail("{}: encoding with special tokens does not contain the plain encoding", path);
  const std::vector<int32_t> prefix(with.begin(), at);
  const std::vector<int32_t> suffix(at + std::ptrdiff_t(without.size()), with.end());
  const bool add_bos = !prefix.empty(), add_eos = !suffix.empty();
  if ((add_bos && prefix != std::vector<int32_t>{tok.bos_id()}) ||
      (add_eos && suffix != std::vector<int32_t>{tok.eos_id()}))
    fail("{}: the special tokens it adds around a text are not just BOS / EOS; GGUF cannot say so", path);
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(add_eos));
  if (config.contains("chat_template") || file_exists(model_dir + "/chat_template.jinja"))
    w.set("tokenizer.chat_template", GgufValue::str(ChatTemplate::load(model_dir).source()));
}

}  // namespace seek::tokenizer
