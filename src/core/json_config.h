// Reading the JSON config files of the trainers (`seek train`/`sft`, `seek rm`, `seek grpo`):
// strict, and every error names the file and the field ("FILE: train: field \"lr\" ...").
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace seek::json_config {

// The file's text as JSON (// comments allowed); invalid UTF-8 or syntax is an error naming
// `source`.
nlohmann::json parse(const std::string& text, const std::string& source);

// `j` must be an object whose keys are all in `allowed`.
void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const std::string& where);

[[noreturn]] void wrong_type(const nlohmann::json& v, const char* key, const std::string& where);

// out = j[key] when j has the key (else out keeps its default). Strict: nlohmann would convert
// between numbers and bools silently (1.5 into an int, 1 into a bool); a config is clearer
// without that.
template <typename T>
void get(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j.at(key);
  bool ok = true;
  if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) ok = v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
  if (!ok) wrong_type(v, key, where);
  try {
    out = v.get<T>();  // compound types (lists of strings) are checked by the conversion
  } catch (const nlohmann::json::exception&) {
    wrong_type(v, key, where);
  }
}

// A field of a config struct by its key, for reading a section's fields from one list.
struct Field {
  const char* key;
  std::variant<bool*, int*, int64_t*, uint64_t*, float*, double*, std::string*> out;
};
inline void get(const nlohmann::json& j, const std::vector<Field>& fields, const std::string& where) {
  for (const Field& f : fields) std::visit([&](auto* out) { get(j, f.key, *out, where); }, f.out);
}

void positive(int64_t v, const char* key, const std::string& where);

// A path given in the config file `source`: a relative one is relative to the file's directory;
// "" stays "".
std::string resolve(const std::string& source, const std::string& path);

}  // namespace seek::json_config
