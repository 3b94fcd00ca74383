#include "serve/prompt.h"

#include "core/error.h"
#include "generate/reasoning.h"
#include "serve/api_error.h"
#include "serve/tool_calls.h"

namespace seek::serve {

using nlohmann::json;

PromptBuilder::PromptBuilder(tokenizer::Tokenizer tok, std::optional<tokenizer::ChatTemplate> tmpl)
    : tok_(std::move(tok)), tmpl_(std::move(tmpl)) {
  if (tmpl_) template_renders_tools_ = tmpl_->source().find("tools") != std::string::npos;
}

BuiltPrompt PromptBuilder::chat(const ChatRequest& r) const {
  if (!tmpl_)
    throw ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); "
                        "use /v1/completions", "invalid_request_error", "messages");
  json messages = r.messages;
  json extra = json::object();
  if (!r.tools.empty()) {
    if (template_renders_tools_) {
      json tools = json::array();
      for (const ToolSpec& t : r.tools)
        tools.push_back({{"type", "function"},
                         {"function", {{"name", t.name}, {"description", t.description},
                                       {"parameters", t.parameters.is_null() ? json::object() : t.parameters}}}});
      extra["tools"] = std::move(tools);
    } else {
      // After the leading system messages, so the template joins it to the system prompt.
      size_t at = 0;
      while (at < messages.size() && messages[at]["role"] == "system") ++at;
      messages.insert(messages.begin() + long(at),
                      json{{"role", "system"}, {"content", tools_system_prompt(r.tools)}});
    }
  }
  BuiltPrompt p;
  try {
    p.text = tmpl_->render(messages, /*add_generation_prompt=*/true, extra);
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("the chat template cannot render these messages: {}", e.what()),
                   "invalid_request_error", "messages");
  }
  const bool opens = generate::prompt_opens_thinking(p.text);
  if (r.prefix) {
    // Prefix completion continues the assistant's answer as written.
    p.text += *r.prefix;
    p.reasoning = opens;
    p.starts_in_thinking = opens;
  } else if (r.reasoning()) {
    if (!opens) p.text += "<think>\n";  // DeepSeek's advice: the reply begins with <think>
    p.reasoning = true;
    p.starts_in_thinking = true;
  } else if (opens) {  // a template that always thinks (R1): still split the thinking out
    p.reasoning = true;
    p.starts_in_thinking = true;
  }
  p.forced = forced_tool_call_prefix(r);
  try {
    p.ids = tok_.encode(p.text, /*add_special_tokens=*/false);
  } catch (const Error& e) {
    bad_request("{}", e.what());
  }
  return p;
}

BuiltPrompt PromptBuilder::completion(const CompletionRequest& r) const {
  BuiltPrompt p;
  if (r.suffix)
    p.text = "<｜fim▁begin｜>" + r.prompt + "<｜fim▁hole｜>" + *r.suffix + "<｜fim▁end｜>";
  else
    p.text = r.prompt;
  try {
    p.ids = tok_.encode(p.text, /*add_special_tokens=*/true);
  } catch (const Error& e) {
    bad_request("{}", e.what());
  }
  return p;
}

}  // namespace seek::serve
