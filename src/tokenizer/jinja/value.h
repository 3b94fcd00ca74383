// Values of the Jinja interpreter, with Python semantics: chat templates are written against
// Jinja2 running on Python objects, so str(), repr(), ==, truthiness and json.dumps must print
// and compare exactly as Python does ("None", "True", 1.0, {'a': 1}).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace seek::tokenizer::jinja {

class Value;
struct Stmt;
using List = std::vector<Value>;

// An insertion-ordered dict with string keys (Python dicts keep order; json.dumps shows it).
struct Map {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

// Jinja's Undefined: falsy, renders as "", iterates as empty; most other uses are errors.
// `what` names the missing thing for those errors ("'foo' is undefined").
struct Undefined {
  std::string what;
};
struct None {};
// A macro defined in the template, or a global function (range, namespace, raise_exception...).
struct Function {
  std::string name;
  const Stmt* macro = nullptr;  // null for a builtin
};
// namespace(): the one mutable object, shared by reference so `set ns.x` is seen everywhere.
struct Namespace {
  std::shared_ptr<Map> attrs;
};

class Value {
 public:
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string,
                               std::shared_ptr<const List>, std::shared_ptr<const Map>, Namespace,
                               Function>;
  Value() = default;
  Value(Undefined u) : v_(std::move(u)) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(List l) : v_(std::make_shared<const List>(std::move(l))) {}
  Value(Map m) : v_(std::make_shared<const Map>(std::move(m))) {}
  Value(Namespace n) : v_(std::move(n)) {}
  Value(Function f) : v_(std::move(f)) {}

  // A tuple is a list that prints as (a, b) and is never equal to a list, as in Python.
  static Value tuple(List l) {
    Value v(std::move(l));
    v.tuple_ = true;
    return v;
  }
  static Value from_json(const nlohmann::ordered_json& j);
  static Value from_json(const nlohmann::json& j);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<None>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_) || is_bool(); }  // Python: bool is an int
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const List>>(v_); }  // or tuple
  bool is_tuple() const { return tuple_ && is_list(); }
  bool is_map() const { return std::holds_alternative<std::shared_ptr<const Map>>(v_); }
  bool is_namespace() const { return std::holds_alternative<Namespace>(v_); }
  bool is_function() const { return std::holds_alternative<Function>(v_); }

  int64_t as_int() const;  // int or bool
  double as_double() const;  // any number
  const std::string& str() const { return std::get<std::string>(v_); }
  const List& list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Map& map() const { return *std::get<std::shared_ptr<const Map>>(v_); }
  Map& ns() const { return *std::get<Namespace>(v_).attrs; }
  const Function& function() const { return std::get<Function>(v_); }
  const Undefined& undefined() const { return std::get<Undefined>(v_); }

  bool truthy() const;
  std::string to_str() const;  // Python str(); Undefined -> ""
  std::string repr() const;    // Python repr()
  const char* type_name() const;  // Python's name for the type: 'NoneType', 'str', 'dict', ...

 private:
  Storage v_;
  bool tuple_ = false;
};

bool equals(const Value& a, const Value& b);  // Python ==

struct JsonOptions {
  int indent = -1;  // < 0: one line
  std::string item_sep, key_sep;  // empty: Python's defaults for the indent mode
  bool sort_keys = false;
  bool ensure_ascii = false;  // transformers' tojson passes False
};
// Python json.dumps. Throws std::invalid_argument for values JSON cannot hold.
std::string to_json(const Value& v, const JsonOptions& opt);

std::string float_repr(double d);  // Python repr(float): shortest round trip, "1.0", "1e+16"

}  // namespace seek::tokenizer::jinja
