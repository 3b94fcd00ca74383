#include "core/json_config.h"

#include <filesystem>

#include "core/error.h"
#include "core/io.h"

namespace seek::json_config {

nlohmann::json parse(const std::string& text, const std::string& source) {
  if (!valid_utf8(text)) fail("{}: not valid UTF-8", source);
  try {
    return nlohmann::json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", source, e.what());
  }
}

void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const std::string& where) {
  if (!j.is_object()) fail("{} must be an object", where);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key())) fail("{}: unknown field \"{}\"", where, it.key());
}

void wrong_type(const nlohmann::json& v, const char* key, const std::string& where) {
  fail("{}: field \"{}\" has the wrong type ({})", where, key, v.dump());
}

void positive(int64_t v, const char* key, const std::string& where) {
  if (v <= 0) fail("{}: \"{}\" must be positive, got {}", where, key, v);
}

std::string resolve(const std::string& source, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(source).parent_path() / path).lexically_normal().string();
}

}  // namespace seek::json_config
