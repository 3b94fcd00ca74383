// Python and Jinja behaviour of values: item/attribute lookup, slicing, iteration, membership,
// and the filters, tests, string/dict methods and global functions templates may call.
// Errors are thrown as jinja::Failure; the interpreter adds the template position.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace seek::tokenizer::jinja {

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Positional argument `i`, else keyword `name`, else nullptr.
  const Value* get(size_t i, std::string_view name) const;
};

bool known_filter(std::string_view name);
bool known_test(std::string_view name);
bool is_global_function(std::string_view name);

Value apply_filter(std::string_view name, const Value& v, const Args& args);
bool apply_test(std::string_view name, const Value& v, const Args& args);
// obj.name(args) for Python str and dict methods.
Value call_method(const Value& obj, std::string_view name, const Args& args);
// range, namespace, dict, raise_exception, strftime_now.
Value call_global(std::string_view name, const Args& args);

// x.name: a dict key or namespace attribute; Undefined if missing.
Value get_attr(const Value& obj, const std::string& name);
// x[key]: Python indexing (negative indexes count from the end); Undefined if missing.
Value get_item(const Value& obj, const Value& key);
// x[start:stop:step] for lists and strings (by code point), Python's clamping rules.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// What `for` iterates: list items, dict keys, string characters; Undefined gives nothing.
std::vector<Value> iterate(const Value& v);
// `item in container`.
bool contains(const Value& container, const Value& item);

}  // namespace seek::tokenizer::jinja
