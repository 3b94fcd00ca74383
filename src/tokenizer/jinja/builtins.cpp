// Lookups, iteration, membership, Python methods and global functions. Filters and tests are in
// filters.cpp.
#include <ctime>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/errors.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/unicode.h"

namespace seek::tokenizer::jinja {

const Value* Args::get(size_t i, std::string_view name) const {
  if (i < pos.size()) return &pos[i];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

namespace {

[[noreturn]] void raise_undefined(const Value& v) { throw Failure(v.undefined().what); }

std::string describe_container(const Value& obj) { return std::string("'") + obj.type_name() + " object'"; }

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) raise_undefined(obj);
  const Value* found = nullptr;
  if (obj.is_map()) found = obj.map().find(name);
  else if (obj.is_namespace()) found = obj.ns().find(name);
  if (found) return *found;
  return Undefined{describe_container(obj) + " has no attribute '" + name + "'"};
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (key.is_string()) return get_attr(obj, key.str());  // Jinja tries obj[key], then obj.key
  if (key.is_int() && (obj.is_list() || obj.is_string())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = int64_t(obj.list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.list()[size_t(i)];
    } else {
      auto cs = pystr::chars(obj.str());
      int64_t n = int64_t(cs.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return cs[size_t(i)];
    }
  }
  return Undefined{describe_container(obj) + " has no element " + key.repr()};
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step_v) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (!obj.is_list() && !obj.is_string()) throw Failure(describe_container(obj) + " is not subscriptable");
  auto bound = [](const Value& v, const char* what) {
    if (!v.is_none() && !v.is_undefined() && !v.is_int()) throw Failure(std::string("slice ") + what + " must be an integer");
    return v.is_int();
  };
  int64_t step = bound(step_v, "step") ? step_v.as_int() : 1;
  if (step == 0) throw Failure("slice step cannot be zero");
  std::vector<std::string> cs;
  if (obj.is_string()) cs = pystr::chars(obj.str());
  const int64_t n = obj.is_list() ? int64_t(obj.list().size()) : int64_t(cs.size());
  // PySlice_AdjustIndices: negative bounds count from the end, then clamp to the valid range.
  auto adjust = [&](const Value& v, const char* what, int64_t dflt) {
    if (!bound(v, what)) return dflt;
    int64_t i = v.as_int();
    if (i < 0) i = std::max<int64_t>(i + n, step < 0 ? -1 : 0);
    else if (i >= n) i = step < 0 ? n - 1 : n;
    return i;
  };
  int64_t b = adjust(start, "start", step < 0 ? n - 1 : 0);
  int64_t e = adjust(stop, "stop", step < 0 ? -1 : n);
  List out_list;
  std::string out_str;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
    if (obj.is_list()) out_list.push_back(obj.list()[size_t(i)]);
    else out_str += cs[size_t(i)];
  }
  if (obj.is_list()) return out_list;
  return out_str;
}

std::vector<Value> iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.list();
  std::vector<Value> out;
  if (v.is_map()) {
    for (const auto& kv : v.map().items) out.emplace_back(kv.first);
  } else if (v.is_string()) {
    for (auto& c : pystr::chars(v.str())) out.emplace_back(std::move(c));
  } else {
    throw Failure(std::string("'") + v.type_name() + "' object is not iterable");
  }
  return out;
}

bool contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (!item.is_string())
      throw Failure(std::string("'in <string>' requires string as left operand, not ") + item.type_name());
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& x : container.list())
      if (equals(x, item)) return true;
    return false;
  }
  if (container.is_map()) return item.is_string() && container.map().find(item.str()) != nullptr;
  throw Failure(std::string("argument of type '") + container.type_name() + "' is not iterable");
}

namespace {

const std::string& want_string(const Value* v, const char* what) {
  if (!v || !v->is_string()) throw Failure(std::string(what) + " must be a string");
  return v->str();
}

long optional_int(const Value* v, long fallback) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_int()) throw Failure("expected an integer argument");
  return long(v->as_int());
}

bool prefix_test(const std::string& s, const Value* arg, bool at_end) {
  auto one = [&](const std::string& p) {
    return at_end ? s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0
                  : s.compare(0, p.size(), p) == 0;
  };
  if (arg && arg->is_list()) {  // a tuple of candidates
    for (const Value& p : arg->list())
      if (one(want_string(&p, "prefix"))) return true;
    return false;
  }
  return one(want_string(arg, at_end ? "endswith argument" : "startswith argument"));
}

Value string_method(const std::string& s, std::string_view name, const Args& a) {
  const Value* a0 = a.get(0, "");
  if (name == "upper") return pystr::upper(s);
  if (name == "lower") return pystr::lower(s);
  if (name == "capitalize") return pystr::capitalize(s);
  if (name == "title") {  // Python: a cased run starts upper-case, the rest of it is lower-case
    std::string out = s;
    bool prev_cased = false;
    for (char& c : out) {
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (alpha) c = prev_cased ? pystr::lower(std::string(1, c))[0] : pystr::upper(std::string(1, c))[0];
      prev_cased = alpha;
    }
    return out;
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const std::string* set = a0 && !a0->is_none() ? &want_string(a0, "strip argument") : nullptr;
    return pystr::strip(s, set, name != "rstrip", name != "lstrip");
  }
  if (name == "split") {
    const Value* sep = a.get(0, "sep");
    const std::string* sep_s = sep && !sep->is_none() ? &want_string(sep, "separator") : nullptr;
    if (sep_s && sep_s->empty()) throw Failure("empty separator");
    List out;
    for (auto& part : pystr::split(s, sep_s, optional_int(a.get(1, "maxsplit"), -1))) out.emplace_back(std::move(part));
    return out;
  }
  if (name == "startswith") return prefix_test(s, a0, false);
  if (name == "endswith") return prefix_test(s, a0, true);
  if (name == "replace")
    return pystr::replace(s, want_string(a0, "replace argument"), want_string(a.get(1, ""), "replace argument"),
                          optional_int(a.get(2, "count"), -1));
  if (name == "find") {
    size_t at = s.find(want_string(a0, "find argument"));
    return at == std::string::npos ? int64_t(-1) : int64_t(unicode::count_code_points(std::string_view(s).substr(0, at)));
  }
  if (name == "count") {
    const std::string& sub = want_string(a0, "count argument");
    if (sub.empty()) return int64_t(unicode::count_code_points(s) + 1);
    int64_t n = 0;
    for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
    return n;
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& v : iterate(a0 ? *a0 : Value())) {
      out += (first ? "" : s) + want_string(&v, "join item");
      first = false;
    }
    return out;
  }
  throw Failure("'str' object has no attribute '" + std::string(name) + "'");
}

Value dict_method(const Map& m, std::string_view name, const Args& a) {
  if (name == "get") {
    const Value* key = a.get(0, "key");
    if (!key) throw Failure("get() needs a key");
    const Value* found = key->is_string() ? m.find(key->str()) : nullptr;
    if (found) return *found;
    const Value* dflt = a.get(1, "default");
    return dflt ? *dflt : Value(None{});  // Python's default is None, not Undefined
  }
  List out;
  if (name == "items") {
    for (const auto& [k, v] : m.items) out.push_back(Value::tuple({Value(k), v}));
  } else if (name == "keys") {
    for (const auto& kv : m.items) out.emplace_back(kv.first);
  } else if (name == "values") {
    for (const auto& kv : m.items) out.push_back(kv.second);
  } else {
    throw Failure("'dict' object has no attribute '" + std::string(name) + "'");
  }
  return out;
}

}  // namespace

Value call_method(const Value& obj, std::string_view name, const Args& args) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_string()) return string_method(obj.str(), name, args);
  if (obj.is_map()) return dict_method(obj.map(), name, args);
  // Lists have no callable methods in transformers' ImmutableSandboxedEnvironment.
  throw Failure(std::string("'") + obj.type_name() + "' object has no callable attribute '" + std::string(name) + "'");
}

bool is_global_function(std::string_view name) {
  return name == "range" || name == "namespace" || name == "dict" || name == "raise_exception" ||
         name == "strftime_now";
}

Value call_global(std::string_view name, const Args& a) {
  if (name == "range") {
    if (a.pos.empty() || a.pos.size() > 3) throw Failure("range expected 1 to 3 arguments");
    for (const Value& v : a.pos)
      if (!v.is_int()) throw Failure("range() arguments must be integers");
    int64_t start = a.pos.size() > 1 ? a.pos[0].as_int() : 0;
    int64_t stop = a.pos.size() > 1 ? a.pos[1].as_int() : a.pos[0].as_int();
    int64_t step = a.pos.size() > 2 ? a.pos[2].as_int() : 1;
    if (step == 0) throw Failure("range() arg 3 must not be zero");
    if ((stop - start) / step > 1'000'000) throw Failure("range() too large");  // sandbox limit
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.emplace_back(i);
    return out;
  }
  if (name == "namespace" || name == "dict") {
    auto m = std::make_shared<Map>();
    for (const Value& p : a.pos) {  // namespace({'a': 1}) / dict({'a': 1})
      if (!p.is_map()) throw Failure(std::string(name) + "() positional argument must be a dict");
      for (const auto& [k, v] : p.map().items) m->set(k, v);
    }
    for (const auto& [k, v] : a.kw) m->set(k, v);
    if (name == "dict") return Map(*m);
    return Namespace{m};
  }
  if (name == "raise_exception") {
    const Value* msg = a.get(0, "message");
    throw Failure(msg ? msg->to_str() : "raise_exception called");
  }
  if (name == "strftime_now") {
    const std::string& fmt = want_string(a.get(0, "format"), "strftime_now format");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    return std::string(buf, n);
  }
  throw Failure("unknown function '" + std::string(name) + "'");
}

}  // namespace seek::tokenizer::jinja
