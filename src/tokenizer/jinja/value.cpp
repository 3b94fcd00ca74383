#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "tokenizer/unicode.h"

namespace seek::tokenizer::jinja {

const Value* Map::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Map::set(const std::string& key, Value v) {
  for (auto& [k, old] : items) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items.emplace_back(key, std::move(v));
}

namespace {

template <typename Json>
Value from_json_impl(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return None{};
    case Json::value_t::boolean: return j.template get<bool>();
    case Json::value_t::number_integer: return j.template get<int64_t>();
    case Json::value_t::number_unsigned: return int64_t(j.template get<uint64_t>());
    case Json::value_t::number_float: return j.template get<double>();
    case Json::value_t::string: return j.template get<std::string>();
    case Json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json_impl(e));
      return l;
    }
    case Json::value_t::object: {
      Map m;
      m.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) m.items.emplace_back(it.key(), from_json_impl(*it));
      return m;
    }
    default: return Undefined{"a binary JSON value"};
  }
}

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }
Value Value::from_json(const nlohmann::json& j) { return from_json_impl(j); }

int64_t Value::as_int() const { return is_bool() ? int64_t(std::get<bool>(v_)) : std::get<int64_t>(v_); }

double Value::as_double() const { return is_float() ? std::get<double>(v_) : double(as_int()); }

bool Value::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return std::get<bool>(v_);
  if (is_int()) return as_int() != 0;
  if (is_float()) return as_double() != 0.0;
  if (is_string()) return !str().empty();
  if (is_list()) return !list().empty();
  if (is_map()) return !map().items.empty();
  return true;  // namespace, function
}

const char* Value::type_name() const {
  if (is_undefined()) return "Undefined";
  if (is_none()) return "NoneType";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "str";
  if (is_list()) return "list";
  if (is_map()) return "dict";
  if (is_namespace()) return "Namespace";
  return "function";
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, then Python's layout: positional for 1e-4 <= |d| < 1e16,
  // scientific with a two-digit exponent otherwise, and always a '.0' on integral values.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp10 = std::stoi(sci.substr(e + 1));
  std::string out = neg ? "-" : "";
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      out.append("0.").append(size_t(-exp10 - 1), '0').append(digits);
    } else if (size_t(exp10) + 1 >= digits.size()) {
      out.append(digits).append(size_t(exp10) + 1 - digits.size(), '0').append(".0");
    } else {
      out.append(digits, 0, size_t(exp10) + 1).append(".").append(digits, size_t(exp10) + 1);
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) out.append(".").append(digits, 1);
    out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  }
  return out;
}

namespace {

std::string py_str_repr(const std::string& s) {
  // Python prefers single quotes and switches to double quotes only to avoid escaping.
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    auto u = uint8_t(c);
    if (c == q || c == '\\') out += {'\\', c};
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7F) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  return out + q;
}

}  // namespace

std::string Value::repr() const {
  if (is_string()) return py_str_repr(str());
  if (is_list()) {
    std::string out = is_tuple() ? "(" : "[";
    for (size_t i = 0; i < list().size(); ++i) out += (i ? ", " : "") + list()[i].repr();
    if (is_tuple()) return out + (list().size() == 1 ? ",)" : ")");
    return out + "]";
  }
  if (is_map()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : map().items) {
      out += (first ? "" : ", ") + py_str_repr(k) + ": " + v.repr();
      first = false;
    }
    return out + "}";
  }
  return to_str();
}

std::string Value::to_str() const {
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return std::get<bool>(v_) ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_float()) return float_repr(as_double());
  if (is_string()) return str();
  if (is_namespace()) return "<Namespace " + Value(ns()).repr() + ">";
  if (is_function()) return "<function " + function().name + ">";
  return repr();
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() == b.str();
  if (a.is_none() && b.is_none()) return true;
  if (a.is_undefined() && b.is_undefined()) return true;
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const List &x = a.list(), &y = b.list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!equals(x[i], y[i])) return false;
    return true;
  }
  if (a.is_map() && b.is_map()) {
    const Map &x = a.map(), &y = b.map();
    if (x.items.size() != y.items.size()) return false;
    for (const auto& [k, v] : x.items) {
      const Value* w = y.find(k);
      if (!w || !equals(v, *w)) return false;
    }
    return true;
  }
  if (a.is_namespace() && b.is_namespace()) return &a.ns() == &b.ns();
  return false;
}

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    auto u = uint8_t(s[i]);
    if (u >= 0x80) {
      size_t start = i;
      char32_t c = unicode::next_code_point(s, i);
      if (!ensure_ascii) {
        out.append(s, start, i - start);
      } else if (c < 0x10000) {
        out += fmt::format("\\u{:04x}", uint32_t(c));
      } else {  // UTF-16 surrogate pair, as Python writes astral characters
        c -= 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
      }
      continue;
    }
    ++i;
    switch (u) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) out += fmt::format("\\u{:04x}", u);
        else out += char(u);
    }
  }
  out += '"';
}

void json_value(std::string& out, const Value& v, const JsonOptions& opt, int depth) {
  const bool pretty = opt.indent >= 0;
  const std::string item_sep = !opt.item_sep.empty() ? opt.item_sep : pretty ? "," : ", ";
  const std::string key_sep = !opt.key_sep.empty() ? opt.key_sep : ": ";
  auto newline = [&](int d) {
    if (!pretty) return;
    out += '\n';
    out.append(size_t(opt.indent * d), ' ');
  };
  if (v.is_none()) out += "null";
  else if (v.is_bool()) out += v.truthy() ? "true" : "false";
  else if (v.is_int()) out += std::to_string(v.as_int());
  else if (v.is_float()) {
    double d = v.as_double();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : float_repr(d);
  } else if (v.is_string()) {
    json_string(out, v.str(), opt.ensure_ascii);
  } else if (v.is_list()) {
    if (v.list().empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < v.list().size(); ++i) {
      if (i) out += item_sep;
      newline(depth + 1);
      json_value(out, v.list()[i], opt, depth + 1);
    }
    newline(depth);
    out += ']';
  } else if (v.is_map()) {
    const Map& m = v.map();
    if (m.items.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<std::string, Value>*> items;
    for (const auto& kv : m.items) items.push_back(&kv);
    if (opt.sort_keys)
      std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep;
      newline(depth + 1);
      json_string(out, items[i]->first, opt.ensure_ascii);
      out += key_sep;
      json_value(out, items[i]->second, opt, depth + 1);
    }
    newline(depth);
    out += '}';
  } else {
    throw std::invalid_argument(std::string("Object of type ") + v.type_name() + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& opt) {
  std::string out;
  json_value(out, v, opt, 0);
  return out;
}

}  // namespace seek::tokenizer::jinja
