#include "serve/prompt.h"

#include <random>

#include "core/error.h"
#include "generate/reasoning.h"
#include "serve/api_error.h"
#include "serve/tool_calls.h"

namespace seek::serve {

using nlohmann::json;

PromptBuilder::PromptBuilder(tokenizer::Tokenizer tok, std::optional<tokenizer::ChatTemplate> tmpl,
                             bool literal_content)
    : tok_(std::move(tok)), tmpl_(std::move(tmpl)), literal_content_(literal_content) {
  if (tmpl_) template_renders_tools_ = tmpl_->source().find("tools") != std::string::npos;
}

namespace {

// Where the message contents landed in the rendered prompt. The template is rendered a second
// time with every content (of the roles in `roles`) replaced by a marker no text can hold; the
// markers are then swapped back, recording each content's span. The template may transform a
// content (R1 drops an assistant's thinking); then the result differs from `text` and nullopt
// says so.
std::optional<tokenizer::TextSpans> content_spans(const tokenizer::ChatTemplate& tmpl, const json& messages,
                                                  const json& extra, const std::string& text,
                                                  bool assistants_too) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  const std::string tag = fmt::format("\x1e{:016x}:", rng());
  json marked = messages;
  std::vector<std::string> contents;
  for (json& m : marked) {
    if (!m.contains("content") || !m["content"].is_string()) continue;
    if (!assistants_too && m["role"] == "assistant") continue;
    contents.push_back(m["content"].get<std::string>());
    m["content"] = fmt::format("{}{}\x1f", tag, contents.size() - 1);
  }
  if (contents.empty()) return tokenizer::TextSpans{};
  std::string rendered = tmpl.render(marked, /*add_generation_prompt=*/true, extra);
  std::string out;
  out.reserve(text.size());
  tokenizer::TextSpans spans;
  size_t at = 0;
  for (size_t hit; (hit = rendered.find(tag, at)) != std::string::npos;) {
    const size_t end = rendered.find('\x1f', hit);
    if (end == std::string::npos) return std::nullopt;
    size_t i = 0;
    try {
      i = std::stoul(rendered.substr(hit + tag.size(), end - hit - tag.size()));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (i >= contents.size()) return std::nullopt;
    out.append(rendered, at, hit - at);
    if (!contents[i].empty()) spans.emplace_back(out.size(), out.size() + contents[i].size());
    out += contents[i];
    at = end + 1;
  }
  out.append(rendered, at);
  if (out != text) return std::nullopt;
  return spans;
}

}  // namespace

BuiltPrompt PromptBuilder::chat(const ChatRequest& r, size_t max_tokens) const {
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
  size_t rendered_size = 0;
  try {
    p.text = tmpl_->render(messages, /*add_generation_prompt=*/true, extra);
    rendered_size = p.text.size();
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
  tokenizer::EncodeOptions eo;
  eo.max_tokens = max_tokens;
  if (literal_content_) {
    // Every content if the template renders them verbatim, else all but the assistants' (a
    // template that rewrites a past answer), else none: the prompt is still the template's.
    const std::string rendered = p.text.substr(0, rendered_size);
    std::optional<tokenizer::TextSpans> spans;
    try {
      spans = content_spans(*tmpl_, messages, extra, rendered, true);
      if (!spans) spans = content_spans(*tmpl_, messages, extra, rendered, false);
    } catch (const Error&) {
      spans.reset();
    }
    if (spans) eo.literal = std::move(*spans);
    if (r.prefix && !r.prefix->empty())
      eo.literal.emplace_back(rendered_size, rendered_size + r.prefix->size());
  }
  encode(p, eo, "messages");
  return p;
}

void PromptBuilder::encode(BuiltPrompt& p, const tokenizer::EncodeOptions& eo, const char* param) const {
  try {
    p.ids = tok_.encode(p.text, eo);
  } catch (const Error& e) {
    bad_request("{}", e.what());
  }
  if (p.ids.size() >= eo.max_tokens)
    throw ApiError(400,
                   fmt::format("the prompt has {}{} tokens but the context limit is {} (prompt and "
                               "output must fit together)",
                               p.ids.size() > eo.max_tokens ? "more than " : "",
                               p.ids.size() > eo.max_tokens ? eo.max_tokens : p.ids.size(), eo.max_tokens),
                   "invalid_request_error", param, "invalid_request");
}

BuiltPrompt PromptBuilder::completion(const CompletionRequest& r, size_t max_tokens) const {
  BuiltPrompt p;
  if (r.suffix)
    p.text = "<｜fim▁begin｜>" + r.prompt + "<｜fim▁hole｜>" + *r.suffix + "<｜fim▁end｜>";
  else
    p.text = r.prompt;
  tokenizer::EncodeOptions eo;
  eo.add_special_tokens = true;
  eo.max_tokens = max_tokens;
  encode(p, eo, "prompt");
  return p;
}

}  // namespace seek::serve
