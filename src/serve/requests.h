// Request bodies of /v1/chat/completions and /v1/completions (+ /beta/completions FIM), parsed
// and validated against DeepSeek's documented ranges. Every rejection is an ApiError: 400 for a
// body that is not a JSON object or carries reasoning_content back, 404 for an unknown model,
// 422 naming the parameter for a wrong type or value. Unknown fields are ignored, as the API does.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "serve/models.h"

namespace seek::serve {

struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // JSON Schema object (may be null)
};

// Settings every generating endpoint shares.
struct SamplingFields {
  int64_t max_tokens = 0;
  // The API sets temperature, top_p and the frequency / presence penalties; the other samplers
  // stay off. Its seed is filled in when the request goes to the engine (see `seed`).
  generate::SamplingParams sampler;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;  // none: a fresh seed per request
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct ChatRequest {
  const ModelSpec* model = nullptr;
  // system / user / assistant / tool messages, content flattened to strings (null for an
  // assistant turn that only calls tools), ready for the chat template. Without the prefix.
  nlohmann::json messages;
  std::optional<std::string> prefix;  // chat prefix completion: the assistant text to continue
  SamplingFields sampling;
  bool logprobs = false;
  int top_logprobs = 0;
  bool json_object = false;  // response_format {"type": "json_object"}
  std::vector<ToolSpec> tools;
  std::string tool_choice = "auto";  // none | auto | required | function
  std::string tool_choice_name;      // tool_choice {"type": "function", "function": {"name"}}

  // Thinking happens for the reasoner, except when tools are given: DeepSeek then answers
  // with the chat model (function calling is a chat-mode feature).
  bool reasoning() const { return model->reasoner() && tools.empty(); }
};

struct CompletionRequest {
  const ModelSpec* model = nullptr;
  std::string prompt;
  std::optional<std::string> suffix;  // fill-in-the-middle
  SamplingFields sampling;
  bool echo = false;
  int logprobs = -1;  // the completions API's integer logprobs (0..20); -1: off
};

ChatRequest parse_chat_request(const nlohmann::json& body, const ModelRegistry& models);
// `fim`: /beta/completions (suffix allowed); otherwise /v1/completions.
CompletionRequest parse_completion_request(const nlohmann::json& body, const ModelRegistry& models,
                                           bool fim);

}  // namespace seek::serve
