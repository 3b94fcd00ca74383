// Python str operations on UTF-8 strings, by code point, for methods and filters.
// Case mapping is ASCII-only (chat templates only change the case of role names and keywords).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace seek::tokenizer::jinja::pystr {

std::vector<std::string> chars(std::string_view s);  // one string per code point
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // first character upper, the rest lower
// str.strip/lstrip/rstrip: `chars` null strips str.isspace() characters.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split(sep, maxsplit): sep null splits on whitespace runs and drops empty strings.
std::vector<std::string> split(std::string_view s, const std::string* sep, long maxsplit);
std::string replace(std::string_view s, std::string_view old, std::string_view repl, long count);

}  // namespace seek::tokenizer::jinja::pystr
