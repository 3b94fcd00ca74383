// A model's chat template (tokenizer_config.json "chat_template"), rendered the way
// `transformers` apply_chat_template does: Jinja with trim_blocks and lstrip_blocks, and the
// variables messages, add_generation_prompt, tools = None, documents = None, plus the special
// tokens named in the config (bos_token, eos_token, pad_token, unk_token) as strings.
//
// The rendered text already contains the BOS when the template writes it, so encode it with
// add_special_tokens=false.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

namespace seek::tokenizer {

class ChatTemplate {
 public:
  // Reads MODEL_DIR/tokenizer_config.json. The template is "chat_template" there (a string, or a
  // list of {name, template} from which "default" is taken), else MODEL_DIR/chat_template.jinja.
  // A .gguf file's template is its tokenizer.chat_template.
  static ChatTemplate load(const std::string& model_dir);
  static ChatTemplate from_source(std::string jinja_source, std::string bos_token, std::string eos_token);

  // `messages` is the OpenAI-style list of {role, content, ...}. `extra_vars` (an object) adds or
  // overrides template variables, e.g. {"tools": [...]}. Throws seek::Error "chat
  // template:LINE:COL: ..." for template errors, raise_exception() included.
  //
  // nlohmann::json sorts object keys; that only shows where a template prints a whole object
  // (tojson). Pass ordered_json to keep the caller's key order there, as Python would.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const nlohmann::json& extra_vars = nlohmann::json::object()) const;
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_vars = nlohmann::ordered_json::object()) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate() = default;  // only load() and from_source() make one
  std::string render_value(jinja::Value messages, bool add_generation_prompt, const jinja::Value& extra) const;

  std::string source_;
  jinja::Template template_;
  std::map<std::string, std::string> special_tokens_;  // bos_token -> "<｜begin▁of▁sentence｜>", ...
};

}  // namespace seek::tokenizer
