#include "serve/requests.h"

#include <cmath>

#include "core/io.h"
#include "serve/api_error.h"

namespace seek::serve {

using nlohmann::json;

namespace {

const char* json_type(const json& v) { return json_kind(v, /*integers=*/true); }

// A field that is absent or null is "not given".
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) invalid_param(name, "{} must be a boolean, got {}", name, json_type(*v));
  return v->get<bool>();
}

// Integers only: 10.0 and "10" are rejected like any other wrong type.
std::optional<int64_t> get_int(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > uint64_t(INT64_MAX)) invalid_param(name, "{} is too large", name);
    return int64_t(v->get<uint64_t>());
  }
  if (!v->is_number_integer()) invalid_param(name, "{} must be an integer, got {}", name, json_type(*v));
  return v->get<int64_t>();
}

float get_number(const json& body, const char* name, float fallback, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) invalid_param(name, "{} must be a number, got {}", name, json_type(*v));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) invalid_param(name, "{} must be between {} and {}, got {}", name, lo, hi, x);
  return float(x);
}

std::string get_string(const json& body, const char* name, bool required) {
  const json* v = field(body, name);
  if (!v) {
    if (required) invalid_param(name, "{} is required", name);
    return {};
  }
  if (!v->is_string()) invalid_param(name, "{} must be a string, got {}", name, json_type(*v));
  return v->get<std::string>();
}

const ModelSpec* get_model(const json& body, const ModelRegistry& models) {
  const std::string name = get_string(body, "model", true);
  const ModelSpec* m = models.find(name);
  if (!m) {
    std::string known;
    for (const ModelSpec& s : models.models) known += (known.empty() ? "" : ", ") + s.name;
    throw ApiError(404,
                   fmt::format("Model Not Exist: model {} is not served here (served: {})", echo_name(name),
                               known),
                   "invalid_request_error", "model", "model_not_found");
  }
  return m;
}

SamplingFields get_sampling(const json& body, int64_t max_default, int64_t max_limit) {
  SamplingFields s;
  s.max_tokens = max_default;
  if (auto m = get_int(body, "max_tokens")) {
    if (*m < 1 || *m > max_limit)
      invalid_param("max_tokens", "max_tokens must be between 1 and {}, got {}", max_limit, *m);
    s.max_tokens = *m;
  }
  s.sampler.temperature = get_number(body, "temperature", 1.0f, 0.0, 2.0);
  s.sampler.top_p = get_number(body, "top_p", 1.0f, 0.0, 1.0);
  if (field(body, "top_p") && s.sampler.top_p <= 0.0f)
    invalid_param("top_p", "top_p must be greater than 0");
  s.sampler.frequency_penalty = get_number(body, "frequency_penalty", 0.0f, -2.0, 2.0);
  s.sampler.presence_penalty = get_number(body, "presence_penalty", 0.0f, -2.0, 2.0);
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) invalid_param("stop", "stop may hold at most 16 strings, got {}", stop->size());
      for (const json& x : *stop) {
        if (!x.is_string()) invalid_param("stop", "stop must be a string or an array of strings");
        s.stop.push_back(x.get<std::string>());
      }
    } else {
      invalid_param("stop", "stop must be a string or an array of strings, got {}", json_type(*stop));
    }
    for (const std::string& x : s.stop)
      if (x.empty()) invalid_param("stop", "stop strings must not be empty");
  }
  if (auto seed = get_int(body, "seed")) s.seed = uint64_t(*seed);
  s.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) invalid_param("stream_options", "stream_options must be an object");
    s.include_usage = get_bool(*so, "include_usage", false);
  }
  if (auto n = get_int(body, "n"); n && *n != 1) invalid_param("n", "n must be 1");
  return s;
}

// OpenAI clients may send content as [{"type": "text", "text": "..."}]; the model reads text.
std::string content_text(const json& content, size_t i) {
  const std::string param = fmt::format("messages[{}].content", i);
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string out;
    for (const json& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        invalid_param(param, "{} parts must be {{\"type\": \"text\", \"text\": \"...\"}}", param);
      out += part["text"].get<std::string>();
    }
    return out;
  }
  invalid_param(param, "{} must be a string, got {}", param, json_type(content));
}

json parse_tool_calls(const json& calls, size_t i) {
  const std::string param = fmt::format("messages[{}].tool_calls", i);
  if (!calls.is_array()) invalid_param(param, "{} must be an array", param);
  json out = json::array();
  for (const json& c : calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
      invalid_param(param, "{} entries must be {{\"type\": \"function\", \"function\": {{...}}}}", param);
    const json& f = c["function"];
    if (!f.contains("name") || !f["name"].is_string())
      invalid_param(param, "{}: every function needs a string name", param);
    std::string args = "{}";
    if (f.contains("arguments")) {
      if (f["arguments"].is_string()) args = f["arguments"].get<std::string>();
      else args = f["arguments"].dump();
    }
    out.push_back({{"id", c.value("id", "")},
                   {"type", "function"},
                   {"function", {{"name", f["name"]}, {"arguments", args}}}});
  }
  return out;
}

json parse_messages(const json& body, std::optional<std::string>& prefix) {
  const json* msgs = field(body, "messages");
  if (!msgs) invalid_param("messages", "messages is required");
  if (!msgs->is_array()) invalid_param("messages", "messages must be an array, got {}", json_type(*msgs));
  if (msgs->empty()) invalid_param("messages", "messages must not be empty");
  json out = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string at = fmt::format("messages[{}]", i);
    if (!m.is_object()) invalid_param(at, "{} must be an object", at);
    if (m.contains("reasoning_content") && !m["reasoning_content"].is_null())
      throw ApiError(400,
                     fmt::format("{}: reasoning_content is an intermediate result shown to the "
                                 "user only and is not fed back to the model; remove it from the "
                                 "input messages", at),
                     "invalid_request_error", at + ".reasoning_content", "invalid_request");
    if (!m.contains("role") || !m["role"].is_string())
      invalid_param(at + ".role", "{}.role must be one of system, user, assistant, tool", at);
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      invalid_param(at + ".role", "{}.role must be one of system, user, assistant, tool, got \"{}\"",
                    at, role);
    json msg = {{"role", role}};
    const bool has_calls = role == "assistant" && m.contains("tool_calls") &&
                           !m["tool_calls"].is_null() && !m["tool_calls"].empty();
    const json* content = field(m, "content");
    if (has_calls) {
      msg["tool_calls"] = parse_tool_calls(m["tool_calls"], i);
      // The V3 template renders tool calls for a content-less assistant turn.
      const std::string text = content ? content_text(*content, i) : "";
      msg["content"] = text.empty() ? json(nullptr) : json(text);
    } else {
      if (!content) invalid_param(at + ".content", "{}.content is required", at);
      msg["content"] = content_text(*content, i);
    }
    if (role == "tool") msg["tool_call_id"] = m.value("tool_call_id", "");
    if (m.contains("name") && m["name"].is_string()) msg["name"] = m["name"];
    if (get_bool(m, "prefix", false)) {
      if (role != "assistant" || i + 1 != msgs->size() || has_calls)
        invalid_param(at + ".prefix",
                      "prefix: true is only allowed on the last message, an assistant message");
      prefix = msg["content"].get<std::string>();
      continue;
    }
    out.push_back(std::move(msg));
  }
  if (out.empty()) invalid_param("messages", "messages must hold more than the assistant prefix");
  return out;
}

bool valid_tool_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

void parse_tools(const json& body, ChatRequest& r) {
  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) invalid_param("tools", "tools must be an array");
    if (tools->size() > 128) invalid_param("tools", "tools may hold at most 128 functions, got {}", tools->size());
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      const std::string at = fmt::format("tools[{}]", i);
      if (!t.is_object() || t.value("type", "function") != "function" || !t.contains("function") ||
          !t["function"].is_object())
        invalid_param(at, "{} must be {{\"type\": \"function\", \"function\": {{...}}}}", at);
      const json& f = t["function"];
      ToolSpec s;
      s.name = get_string(f, "name", false);
      if (!valid_tool_name(s.name))
        invalid_param(at + ".function.name",
                      "{}.function.name must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -", at);
      s.description = get_string(f, "description", false);
      if (const json* p = field(f, "parameters")) {
        if (!p->is_object()) invalid_param(at + ".function.parameters", "{}.function.parameters must be an object", at);
        s.parameters = *p;
      }
      for (const ToolSpec& o : r.tools)
        if (o.name == s.name) invalid_param(at + ".function.name", "tool {} is defined twice", s.name);
      r.tools.push_back(std::move(s));
    }
  }
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      r.tool_choice = tc->get<std::string>();
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required")
        invalid_param("tool_choice", "tool_choice must be none, auto, required or a named function");
    } else if (tc->is_object() && tc->contains("function") && (*tc)["function"].is_object() &&
               (*tc)["function"].contains("name") && (*tc)["function"]["name"].is_string()) {
      r.tool_choice = "function";
      r.tool_choice_name = (*tc)["function"]["name"].get<std::string>();
      bool known = false;
      for (const ToolSpec& s : r.tools) known |= s.name == r.tool_choice_name;
      if (!known) invalid_param("tool_choice", "tool_choice names {}, which is not in tools", r.tool_choice_name);
    } else {
      invalid_param("tool_choice", "tool_choice must be none, auto, required or a named function");
    }
    if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tools.empty())
      invalid_param("tool_choice", "tool_choice {} needs tools", r.tool_choice);
  }
  if (r.tool_choice == "none") r.tools.clear();
}

void check_body(const json& body) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const ModelRegistry& models) {
  check_body(body);
  ChatRequest r;
  r.model = get_model(body, models);
  r.messages = parse_messages(body, r.prefix);
  r.sampling = get_sampling(body, r.model->max_tokens_default, r.model->max_tokens_limit);
  r.logprobs = get_bool(body, "logprobs", false);
  if (auto k = get_int(body, "top_logprobs")) {
    if (*k < 0 || *k > 20) invalid_param("top_logprobs", "top_logprobs must be between 0 and 20, got {}", *k);
    if (!r.logprobs) invalid_param("top_logprobs", "top_logprobs needs logprobs: true");
    r.top_logprobs = int(*k);
  }
  if (r.model->reasoner() && (r.logprobs || field(body, "top_logprobs")))
    throw ApiError(400, fmt::format("{} does not support logprobs / top_logprobs", r.model->name),
                   "invalid_request_error", r.logprobs ? "logprobs" : "top_logprobs",
                   "invalid_request");
  if (const json* rf = field(body, "response_format")) {
    const std::string type = rf->is_object() ? rf->value("type", "") : "";
    if (type == "json_object") r.json_object = true;
    else if (type != "text")
      invalid_param("response_format", "response_format.type must be \"text\" or \"json_object\"");
  }
  parse_tools(body, r);
  if (r.reasoning()) {  // silently ignored, as DeepSeek documents for the reasoner
    r.sampling.sampler.temperature = r.model->reasoner_temperature;
    r.sampling.sampler.top_p = r.model->reasoner_top_p;
    r.sampling.sampler.frequency_penalty = r.sampling.sampler.presence_penalty = 0.0f;
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body, const ModelRegistry& models, bool fim) {
  check_body(body);
  CompletionRequest r;
  r.model = get_model(body, models);
  const json* p = field(body, "prompt");
  if (!p) invalid_param("prompt", "prompt is required");
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (!p->is_string()) invalid_param("prompt", "prompt must be a string, got {}", json_type(*p));
  r.prompt = p->get<std::string>();
  if (const json* s = field(body, "suffix")) {
    if (!fim) invalid_param("suffix", "suffix (fill-in-the-middle) is served at /beta/completions");
    if (!s->is_string()) invalid_param("suffix", "suffix must be a string, got {}", json_type(*s));
    r.suffix = s->get<std::string>();
  }
  r.sampling = get_sampling(body, r.model->completion_max_tokens_default,
                            r.model->completion_max_tokens_limit);
  r.echo = get_bool(body, "echo", false);
  if (auto k = get_int(body, "logprobs")) {
    if (*k < 0 || *k > 20) invalid_param("logprobs", "logprobs must be between 0 and 20, got {}", *k);
    r.logprobs = int(*k);
  }
  return r;
}

}  // namespace seek::serve
