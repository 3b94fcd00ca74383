#include "tokenizer/jinja/pystr.h"

#include "tokenizer/unicode.h"

namespace seek::tokenizer::jinja::pystr {

std::vector<std::string> chars(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t b = i;
    unicode::next_code_point(s, i);
    out.emplace_back(s.substr(b, i - b));
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = char(c - 32);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c + 32);
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out = lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = char(out[0] - 32);
  return out;
}

std::string strip(std::string_view s, const std::string* set, bool left, bool right) {
  std::vector<char32_t> strip_set;
  if (set)
    for (size_t i = 0; i < set->size();) strip_set.push_back(unicode::next_code_point(*set, i));
  auto strippable = [&](char32_t c) {
    if (!set) return unicode::is_python_space(c);
    for (char32_t x : strip_set)
      if (x == c) return true;
    return false;
  };
  size_t b = 0, e = s.size();
  while (left && b < e) {
    size_t i = b;
    if (!strippable(unicode::next_code_point(s, i))) break;
    b = i;
  }
  while (right && e > b) {
    size_t start = e - 1;
    while (start > b && (uint8_t(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!strippable(unicode::next_code_point(s, i))) break;
    e = start;
  }
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, long maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || long(out.size()) < maxsplit) {
      size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size()) {
      size_t j = i;
      if (!unicode::is_python_space(unicode::next_code_point(s, j))) break;
      i = j;
    }
  };
  skip_space();
  while (i < s.size()) {
    if (maxsplit >= 0 && long(out.size()) == maxsplit) {  // the rest, trailing space included
      out.emplace_back(s.substr(i));
      break;
    }
    size_t b = i;
    while (i < s.size()) {
      size_t j = i;
      if (unicode::is_python_space(unicode::next_code_point(s, j))) break;
      i = j;
    }
    out.emplace_back(s.substr(b, i - b));
    skip_space();
  }
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view repl, long count) {
  std::string out;
  size_t start = 0;
  long done = 0;
  if (old.empty()) {  // Python inserts `repl` around every character
    for (const std::string& c : chars(s)) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      out += c;
    }
    if (count < 0 || done < count) out += repl;
    return out;
  }
  while (count < 0 || done < count) {
    size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out += repl;
    start = at + old.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

}  // namespace seek::tokenizer::jinja::pystr
