#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"
#include "tokenizer/gguf_vocab.h"

namespace seek::tokenizer {
namespace {

using nlohmann::json;

const jinja::Options& template_options() {
  static const jinja::Options opt{.trim_blocks = true, .lstrip_blocks = true, .name = "chat template"};
  return opt;
}

std::string pick_template(const json& v, const std::string& source) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
    std::string names;
    for (const auto& t : v) {
      const bool named = t.is_object() && t.contains("name") && t["name"].is_string();
      if (named && t["name"] == "default" && t.contains("template") && t["template"].is_string())
        return t["template"].get<std::string>();
      names += (names.empty() ? "" : ", ") + (named ? t["name"].get<std::string>() : std::string("?"));
    }
    fail("{}: chat_template has no template named \"default\" (has: {})", source, names);
  }
  fail("{}: chat_template must be a string or a list of {{name, template}}", source);
}

}  // namespace

ChatTemplate ChatTemplate::load(const std::string& model_dir) {
  if (is_gguf_file(model_dir)) {  // tokenizer.chat_template, special tokens from the vocabulary
    const GgufFile f = GgufFile::open(model_dir);
    const GgufHeader& h = f.header();
    ChatTemplate t = from_source(chat_template_from_gguf(h, model_dir), "", "");
    t.special_tokens_.clear();
    const GgufValue* tokens = h.find("tokenizer.ggml.tokens");
    for (const auto& [key, id_key] : {std::pair{"bos_token", "tokenizer.ggml.bos_token_id"},
                                      std::pair{"eos_token", "tokenizer.ggml.eos_token_id"},
                                      std::pair{"pad_token", "tokenizer.ggml.padding_token_id"}}) {
      const GgufValue* id = h.find(id_key);
      if (tokens && id && id->is_integer() && id->i >= 0 && size_t(id->i) < tokens->strs.size())
        t.special_tokens_[key] = tokens->strs[size_t(id->i)];
    }
    return t;
  }
  const std::string config_path = model_dir + "/tokenizer_config.json";
  const json config = parse_json(read_file(config_path), config_path);
  std::string source;
  if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    source = pick_template(config["chat_template"], config_path);
  } else if (file_exists(model_dir + "/chat_template.jinja")) {  // newer transformers save it apart
    source = read_file(model_dir + "/chat_template.jinja");
  } else {
    fail("{}: no \"chat_template\" (and no chat_template.jinja beside it)", config_path);
  }
  ChatTemplate t = from_source(std::move(source), "", "");
  t.special_tokens_.clear();
  for (const char* key : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    if (!config.contains(key) || config[key].is_null()) continue;  // unset: Undefined in the template
    const json& v = config[key];
    if (v.is_string()) t.special_tokens_[key] = v.get<std::string>();
    else if (v.is_object() && v.contains("content") && v["content"].is_string()) t.special_tokens_[key] = v["content"].get<std::string>();
    else fail("{}: \"{}\" must be a string or {{\"content\": ...}}", config_path, key);
  }
  return t;
}

ChatTemplate ChatTemplate::from_source(std::string jinja_source, std::string bos_token, std::string eos_token) {
  ChatTemplate t;
  t.template_ = jinja::Template::parse(jinja_source, template_options());
  t.source_ = std::move(jinja_source);
  t.special_tokens_["bos_token"] = std::move(bos_token);
  t.special_tokens_["eos_token"] = std::move(eos_token);
  return t;
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra_vars) const {
  return render_value(jinja::Value::from_json(messages), add_generation_prompt, jinja::Value::from_json(extra_vars));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_vars) const {
  return render_value(jinja::Value::from_json(messages), add_generation_prompt, jinja::Value::from_json(extra_vars));
}

std::string ChatTemplate::render_value(jinja::Value messages, bool add_generation_prompt, const jinja::Value& extra) const {
  if (!messages.is_list()) fail("chat template: messages must be a list");
  if (!extra.is_map()) fail("chat template: extra variables must be an object");
  jinja::Map vars;
  vars.set("messages", std::move(messages));
  vars.set("tools", jinja::None{});
  vars.set("documents", jinja::None{});
  vars.set("add_generation_prompt", add_generation_prompt);
  for (const auto& [k, v] : special_tokens_) vars.set(k, v);
  for (const auto& [k, v] : extra.map().items) vars.set(k, v);
  return template_.render(vars);
}

}  // namespace seek::tokenizer
