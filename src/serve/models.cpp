#include "serve/models.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace seek::serve {

std::string echo_name(std::string_view name) {
  constexpr size_t kMax = 64;
  if (name.size() <= kMax) return std::string(name);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // whole characters
  return fmt::format("{}... ({} bytes)", name.substr(0, cut), name.size());
}

const ModelSpec* ModelRegistry::find(std::string_view name) const {
  for (const ModelSpec& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

ModelRegistry ModelRegistry::defaults(const std::string& served) {
  ModelRegistry r;
  ModelSpec chat;
  chat.name = served;
  r.models.push_back(chat);
  if (served != "deepseek-chat") {
    chat.name = "deepseek-chat";
    r.models.push_back(chat);
  }
  if (served != "deepseek-reasoner") {
    ModelSpec reasoner;
    reasoner.name = "deepseek-reasoner";
    reasoner.mode = Mode::Reasoner;
    r.models.push_back(reasoner);
  }
  return r;
}

ModelRegistry ModelRegistry::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("models") || !j["models"].is_array() || j["models"].empty())
    fail("{}: expected {{\"models\": [ ... ]}} with at least one model", source);
  ModelRegistry r;
  for (const auto& m : j["models"]) {
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string())
      fail("{}: every model needs a string \"name\"", source);
    ModelSpec s;
    s.name = m["name"].get<std::string>();
    auto where = [&](const char* f) { return fmt::format("{}: model {}: {}", source, s.name, f); };
    if (m.contains("mode")) {
      const auto mode = m["mode"].is_string() ? m["mode"].get<std::string>() : "";
      if (mode == "chat") s.mode = Mode::Chat;
      else if (mode == "reasoner") s.mode = Mode::Reasoner;
      else fail("{} must be \"chat\" or \"reasoner\"", where("mode"));
    }
    auto int_field = [&](const char* f, int64_t& out) {
      if (!m.contains(f)) return;
      if (!m[f].is_number_integer() || m[f].get<int64_t>() < 1) fail("{} must be an integer >= 1", where(f));
      out = m[f].get<int64_t>();
    };
    auto float_field = [&](const char* f, float& out) {
      if (!m.contains(f)) return;
      if (!m[f].is_number()) fail("{} must be a number", where(f));
      out = m[f].get<float>();
    };
    int_field("max_tokens_default", s.max_tokens_default);
    int_field("max_tokens_limit", s.max_tokens_limit);
    int_field("reasoning_budget", s.reasoning_budget);
    int_field("completion_max_tokens_default", s.completion_max_tokens_default);
    int_field("completion_max_tokens_limit", s.completion_max_tokens_limit);
    float_field("reasoner_temperature", s.reasoner_temperature);
    float_field("reasoner_top_p", s.reasoner_top_p);
    if (s.max_tokens_default > s.max_tokens_limit)
      fail("{} exceeds max_tokens_limit", where("max_tokens_default"));
    if (r.find(s.name)) fail("{}: model name {} appears twice", source, s.name);
    r.models.push_back(s);
  }
  return r;
}

}  // namespace seek::serve
