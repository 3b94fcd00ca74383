// Jinja filters and tests, with the semantics of Jinja 3.1 as transformers configures it
// (its own tojson: json.dumps with ensure_ascii=False and no HTML escaping).
#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/errors.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/unicode.h"

namespace seek::tokenizer::jinja {
namespace {

constexpr std::string_view kFilters[] = {
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "reject",
    "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "string", "title",
    "tojson", "trim", "upper"};
constexpr std::string_view kTests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "even", "false", "float",
    "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
    "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "true", "undefined",
    "upper", "==", "!=", "<", "<=", ">", ">="};

bool truthy_arg(const Value* v, bool fallback) { return v ? v->truthy() : fallback; }

// Python's float(s) of a stripped string: the whole text must parse.
std::optional<double> whole_double(const std::string& s) {
  try {
    size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

int64_t int_of(const Value& v, int64_t fallback) {
  if (v.is_int()) return v.as_int();
  if (v.is_float()) return int64_t(v.as_double());
  if (v.is_string()) {
    std::string s = pystr::strip(v.str(), nullptr, true, true);
    try {
      size_t used = 0;
      int64_t i = std::stoll(s, &used);
      if (used == s.size()) return i;
    } catch (const std::exception&) {
      return fallback;
    }
    // Jinja's int filter falls back to float("1.5").
    if (auto d = whole_double(s)) return int64_t(*d);
  }
  return fallback;
}

double float_of(const Value& v, double fallback) {
  if (v.is_number()) return v.as_double();
  if (v.is_string())
    if (auto d = whole_double(pystr::strip(v.str(), nullptr, true, true))) return *d;
  return fallback;
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double();
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  throw Failure(std::string("'<' not supported between '") + a.type_name() + "' and '" + b.type_name() + "'");
}

// Attribute path "a.b" as used by map/selectattr/join(attribute=...).
Value attribute(const Value& v, const std::string& path) {
  static const std::string kDot = ".";
  Value cur = v;
  for (const std::string& part : pystr::split(path, &kDot, -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = digits ? get_item(cur, Value(int64_t(std::stoll(part)))) : get_attr(cur, part);
  }
  return cur;
}

// select/reject(test, args...) and selectattr/rejectattr(attr, test, args...).
Value select(std::string_view name, const Value& v, const Args& a) {
  const bool by_attr = name.ends_with("attr");
  const bool keep = name.starts_with("select");
  size_t first = by_attr ? 1 : 0;
  std::string attr;
  if (by_attr) {
    if (a.pos.empty() || !a.pos[0].is_string()) throw Failure(std::string(name) + " needs an attribute name");
    attr = a.pos[0].str();
  }
  std::string test;
  Args test_args;
  if (a.pos.size() > first) {
    if (!a.pos[first].is_string()) throw Failure(std::string(name) + " needs a test name");
    test = a.pos[first].str();
    if (!known_test(test)) throw Failure("no test named '" + test + "'");
    test_args.pos.assign(a.pos.begin() + long(first) + 1, a.pos.end());
  }
  List out;
  for (const Value& item : iterate(v)) {
    Value x = by_attr ? attribute(item, attr) : item;
    bool ok = test.empty() ? x.truthy() : apply_test(test, x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value indent(const std::string& s, const Args& a) {
  const Value* w = a.get(0, "width");
  std::string pad = w && w->is_string() ? w->str() : std::string(size_t(w ? std::max<int64_t>(0, int_of(*w, 4)) : 4), ' ');
  bool first = truthy_arg(a.get(1, "first"), false), blank = truthy_arg(a.get(2, "blank"), false);
  // Jinja appends "\n" and splits lines, so a trailing newline does not grow an indented line.
  static const std::string kNewline = "\n";
  std::vector<std::string> lines = pystr::split(s + "\n", &kNewline, -1);
  lines.pop_back();
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    bool indent_it = i == 0 ? first : (blank || !lines[i].empty());
    out += (indent_it ? pad : "") + lines[i];
  }
  return out;
}

}  // namespace

bool known_filter(std::string_view name) { return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters); }
bool known_test(std::string_view name) { return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests); }

Value apply_filter(std::string_view name, const Value& v, const Args& a) {
  const Value* a0 = a.get(0, "");
  if (name == "default" || name == "d") {
    const Value* dflt = a.get(0, "default_value");
    bool use = v.is_undefined() || (truthy_arg(a.get(1, "boolean"), false) && !v.truthy());
    return use ? (dflt ? *dflt : Value("")) : v;
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return int64_t(unicode::count_code_points(v.str()));
    if (v.is_list()) return int64_t(v.list().size());
    if (v.is_map()) return int64_t(v.map().items.size());
    if (v.is_undefined()) return int64_t(0);
    throw Failure(std::string("object of type '") + v.type_name() + "' has no len()");
  }
  if (name == "string") return v.to_str();
  if (name == "safe") return v;
  if (name == "escape" || name == "e") return html_escape(v.to_str());
  if (name == "trim") {
    const Value* chars = a.get(0, "chars");
    return pystr::strip(v.to_str(), chars && chars->is_string() ? &chars->str() : nullptr, true, true);
  }
  if (name == "upper") return pystr::upper(v.to_str());
  if (name == "lower") return pystr::lower(v.to_str());
  if (name == "capitalize") return pystr::capitalize(v.to_str());
  if (name == "title") {  // Jinja: each word (split at whitespace and -([{<) capitalized
    std::string s = v.to_str(), out;
    bool word_start = true;
    for (char c : s) {
      bool sep = unicode::is_python_space(char32_t(uint8_t(c))) || std::string_view("-([{<").find(c) != std::string_view::npos;
      out += sep ? c : word_start ? pystr::upper(std::string(1, c))[0] : pystr::lower(std::string(1, c))[0];
      word_start = sep;
    }
    return out;
  }
  if (name == "replace") {
    if (!a0 || !a.get(1, "new")) throw Failure("replace needs two arguments");
    const Value* count = a.get(2, "count");
    return pystr::replace(v.to_str(), a0->to_str(), a.get(1, "new")->to_str(), count && count->is_int() ? long(count->as_int()) : -1);
  }
  if (name == "tojson") {
    // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    JsonOptions opt;
    if (const Value* x = a.get(0, "ensure_ascii")) opt.ensure_ascii = x->truthy();
    if (const Value* x = a.get(1, "indent"); x && !x->is_none()) opt.indent = int(int_of(*x, 0));
    if (const Value* x = a.get(2, "separators"); x && x->is_list() && x->list().size() == 2) {
      opt.item_sep = x->list()[0].to_str();
      opt.key_sep = x->list()[1].to_str();
    }
    opt.sort_keys = truthy_arg(a.get(3, "sort_keys"), false);
    try {
      return to_json(v, opt);
    } catch (const std::invalid_argument& e) {
      throw Failure(e.what());
    }
  }
  if (name == "first" || name == "last") {
    std::vector<Value> items = iterate(v);
    if (items.empty()) return Undefined{"No first item, sequence was empty."};
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return List(iterate(v));
  if (name == "reverse") {
    if (v.is_string()) {
      auto cs = pystr::chars(v.str());
      std::string out;
      for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
      return out;
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return items;
  }
  if (name == "join") {
    std::string sep = a0 ? a0->to_str() : "", out;
    const Value* attr = a.get(1, "attribute");
    bool first = true;
    for (const Value& item : iterate(v)) {
      out += (first ? "" : sep) + (attr ? attribute(item, attr->to_str()) : item).to_str();
      first = false;
    }
    return out;
  }
  if (name == "items" || name == "dictsort") {
    if (v.is_undefined()) return List{};
    if (!v.is_map()) throw Failure(std::string(name) + " expects a mapping");
    List out;
    for (const auto& [k, x] : v.map().items) out.push_back(Value::tuple({Value(k), x}));
    if (name == "dictsort") {
      bool case_sensitive = truthy_arg(a.get(0, "case_sensitive"), false);
      const Value* by = a.get(1, "by");
      size_t idx = by && by->is_string() && by->str() == "value" ? 1 : 0;
      auto key = [&](const Value& pair) {
        const Value& k = pair.list()[idx];
        return k.is_string() && !case_sensitive ? Value(pystr::lower(k.str())) : k;
      };
      std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) { return less(key(x), key(y)); });
      if (truthy_arg(a.get(2, "reverse"), false)) std::reverse(out.begin(), out.end());
    }
    return out;
  }
  if (name == "map") {
    List out;
    const Value* attr = a.get(99, "attribute");
    for (const Value& item : iterate(v)) {
      if (attr) {
        Value x = attribute(item, attr->to_str());
        const Value* dflt = a.get(99, "default");
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      } else {
        if (!a0 || !a0->is_string() || !known_filter(a0->str())) throw Failure("map needs a filter name or attribute=");
        Args rest;
        rest.pos.assign(a.pos.begin() + 1, a.pos.end());
        rest.kw = a.kw;
        out.push_back(apply_filter(a0->str(), item, rest));
      }
    }
    return out;
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") return select(name, v, a);
  if (name == "indent") return indent(v.to_str(), a);
  if (name == "int") return int_of(v, a0 ? int_of(*a0, 0) : 0);
  if (name == "float") return float_of(v, a0 ? float_of(*a0, 0.0) : 0.0);
  if (name == "abs") {
    if (v.is_int()) return std::abs(v.as_int());
    if (v.is_float()) return std::fabs(v.as_double());
    throw Failure(std::string("bad operand type for abs(): '") + v.type_name() + "'");
  }
  if (name == "round") {
    if (!v.is_number()) throw Failure("round expects a number");
    double scale = std::pow(10.0, double(a0 ? int_of(*a0, 0) : 0));
    const Value* method = a.get(1, "method");
    std::string m = method ? method->to_str() : "common";
    double x = v.as_double() * scale;
    // "common" is Python's round(): ties to even, which is nearbyint's default rounding mode.
    double r = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::nearbyint(x);
    return r / scale;
  }
  throw Failure("no filter named '" + std::string(name) + "'");
}

bool apply_test(std::string_view name, const Value& v, const Args& a) {
  const Value* a0 = a.get(0, "");
  auto need_arg = [&]() -> const Value& {
    if (!a0) throw Failure("test '" + std::string(name) + "' needs an argument");
    return *a0;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.truthy();
  if (name == "false") return v.is_bool() && !v.truthy();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int() && !v.is_bool();
  if (name == "float") return v.is_float();
  if (name == "mapping") return v.is_map();
  if (name == "iterable") return v.is_list() || v.is_map() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_map() || v.is_string();
  if (name == "callable") return v.is_function();
  if (name == "lower") return v.is_string() && pystr::lower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && pystr::upper(v.str()) == v.str();
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!v.is_int()) throw Failure("test '" + std::string(name) + "' needs an integer");
    int64_t m = name == "divisibleby" ? int_of(need_arg(), 0) : 2;
    if (m == 0) throw Failure("integer division or modulo by zero");
    bool divisible = v.as_int() % m == 0;
    return name == "odd" ? !divisible : divisible;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") return equals(v, need_arg());
  if (name == "ne" || name == "!=") return !equals(v, need_arg());
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, need_arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return less(need_arg(), v);
  if (name == "le" || name == "<=") return !less(need_arg(), v);
  if (name == "ge" || name == ">=") return !less(v, need_arg());
  if (name == "in") return contains(need_arg(), v);
  throw Failure("no test named '" + std::string(name) + "'");
}

}  // namespace seek::tokenizer::jinja
