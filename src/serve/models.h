// The names the server answers to. The served model is listed under its own name and under
// aliases; each name picks a mode (chat: no thinking; reasoner: <think> … </think> returned as
// reasoning_content) and its own token limits, as DeepSeek's deepseek-chat / deepseek-reasoner.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace seek::serve {

enum class Mode { Chat, Reasoner };

struct ModelSpec {
  std::string name;
  Mode mode = Mode::Chat;
  int64_t max_tokens_default = 4096;  // chat: the output; reasoner: the answer after thinking
  int64_t max_tokens_limit = 8192;
  int64_t reasoning_budget = 32768;   // reasoner: thinking tokens before </think> is forced
  // The reasoner ignores the request's sampling values and uses these (DeepSeek's R1 advice).
  float reasoner_temperature = 0.6f;
  float reasoner_top_p = 0.95f;
  // FIM / plain completions.
  int64_t completion_max_tokens_default = 1024;
  int64_t completion_max_tokens_limit = 4096;

  bool reasoner() const { return mode == Mode::Reasoner; }
};

// A client's model name as error messages quote it: at most 64 bytes (a name is short; a 1 MB
// one is not echoed back).
std::string echo_name(std::string_view name);

struct ModelRegistry {
  std::vector<ModelSpec> models;  // in /v1/models order

  const ModelSpec* find(std::string_view name) const;
  // `served` (chat mode) plus deepseek-chat (chat) and deepseek-reasoner (reasoner).
  static ModelRegistry defaults(const std::string& served);
  // {"models": [{"name", "mode": "chat"|"reasoner", "max_tokens_default", "max_tokens_limit",
  //   "reasoning_budget", "reasoner_temperature", "reasoner_top_p", ...}]}: fields not given
  // keep the defaults. Throws seek::Error naming `source` and the field.
  static ModelRegistry from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace seek::serve
