#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/jinja/errors.h"
#include "tokenizer/unicode.h"

namespace seek::tokenizer::jinja {

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(std::string_view src, const Options& opt) : src_(src), opt_(opt) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i)
      if (src[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // Jinja: did the previous token end with a newline?
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string_view::npos) {
        add_text(src_.substr(pos), pos);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string_view text = src_.substr(pos, tag - pos);
      if (sign == '-') {
        text = rstrip_python(text);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        // Only when the tag is the first thing on its line: strip that line's spaces and tabs.
        size_t l = text.rfind('\n');
        l = l == std::string_view::npos ? 0 : l + 1;
        if ((l > 0 || line_starting) && text.find_first_not_of(" \t", l) == std::string_view::npos)
          text = text.substr(0, l);
      }
      add_text(text, pos);
      size_t p = tag + 2 + (sign ? 1 : 0);
      pos = kind == '#' ? lex_comment(p, tag, line_starting) : lex_tag(kind, p, tag, line_starting);
    }
    out_.push_back({Token::Type::Eof, pos_at(src_.size()), {}});
    return std::move(out_);
  }

 private:
  Pos pos_at(size_t off) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off) - 1;
    size_t line_start = *it;
    return {int(it - line_starts_.begin()) + 1,
            int(unicode::count_code_points(src_.substr(line_start, off - line_start))) + 1};
  }
  [[noreturn]] void error(size_t off, const std::string& msg) const { fail_at(opt_.name, pos_at(off), msg); }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && std::strchr("{%#", src_[i + 1]) && src_[i + 1] != 0) return i;
    return std::string_view::npos;
  }

  // Python's str.rstrip(): removes every character with str.isspace().
  static std::string_view rstrip_python(std::string_view s) {
    size_t end = s.size();
    while (end > 0) {
      size_t start = end - 1;
      while (start > 0 && (uint8_t(s[start]) & 0xC0) == 0x80) --start;
      size_t i = start;
      if (!unicode::is_python_space(unicode::next_code_point(s, i))) break;
      end = start;
    }
    return s.substr(0, end);
  }
  // The `\s*` after `-%}`: Python's \s on str, i.e. str.isspace().
  size_t skip_python_space(size_t i) const {
    while (i < src_.size()) {
      size_t j = i;
      if (!unicode::is_python_space(unicode::next_code_point(src_, j))) break;
      i = j;
    }
    return i;
  }

  void add_text(std::string_view text, size_t off) {
    if (!text.empty()) out_.push_back({Token::Type::Text, pos_at(off), std::string(text)});
  }

  // Where the text after a closing delimiter resumes, applying `-` or trim_blocks.
  size_t after_end(size_t end, char sign, bool block, bool& line_starting) const {
    size_t after = end;
    if (sign == '-') after = skip_python_space(after);
    else if (sign != '+' && block && opt_.trim_blocks && after < src_.size() && src_[after] == '\n') ++after;
    line_starting = after > end && src_[after - 1] == '\n';
    return after;
  }

  size_t lex_comment(size_t p, size_t tag, bool& line_starting) {
    size_t close = src_.find("#}", p);
    if (close == std::string_view::npos) error(tag, "unterminated comment");
    char sign = close > p && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    return after_end(close + 2, sign, true, line_starting);
  }

  size_t lex_tag(char kind, size_t p, size_t tag, bool& line_starting) {
    const bool block = kind == '%';
    if (block) check_raw(p, tag);
    out_.push_back({block ? Token::Type::BlockBegin : Token::Type::VarBegin, pos_at(tag), {}});
    const std::string_view close = block ? "%}" : "}}";
    std::vector<char> brackets;  // delimiters only close the tag outside brackets: {{ {'a': 1} }}
    while (true) {
      if (p >= src_.size()) error(tag, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      if (brackets.empty()) {
        char sign = 0;
        size_t at = p;
        if ((src_[p] == '-' || (block && src_[p] == '+')) && src_.substr(p + 1, 2) == close) sign = src_[at++];
        if (src_.substr(at, 2) == close) {
          out_.push_back({block ? Token::Type::BlockEnd : Token::Type::VarEnd, pos_at(p), {}});
          return after_end(at + 2, sign, block, line_starting);
        }
      }
      char c = src_[p];
      if (is_ascii_space(c)) {
        ++p;
      } else if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t b = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        out_.push_back({Token::Type::Name, pos_at(b), std::string(src_.substr(b, p - b))});
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, brackets);
      }
    }
  }

  // {% raw %} is the one construct the lexer would need a separate mode for; it is not used by
  // chat templates, so it is rejected instead of mis-parsed.
  void check_raw(size_t p, size_t tag) const {
    while (p < src_.size() && is_ascii_space(src_[p])) ++p;
    if (src_.substr(p, 3) == "raw" && (p + 3 >= src_.size() || !is_name_char(src_[p + 3])))
      error(tag, "{% raw %} blocks are not supported");
  }

  size_t lex_number(size_t p) {
    size_t b = p;
    auto digits = [&] {
      while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1])))) ++p;
    };
    digits();
    bool is_float = false;
    // After '.', "0.1" in `x.0.1` is two attribute lookups, not a float (Jinja's (?<!\.)).
    bool after_dot = !out_.empty() && out_.back().type == Token::Type::Op && out_.back().text == ".";
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      ++p;
      digits();
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        p = q;
        digits();
        is_float = true;
      }
    }
    std::string text(src_.substr(b, p - b));
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    Token t{is_float ? Token::Type::Float : Token::Type::Int, pos_at(b), text};
    try {
      if (is_float) t.float_value = std::stod(text);
      else t.int_value = std::stoll(text);
    } catch (const std::exception&) {
      error(b, "number out of range: " + text);
    }
    out_.push_back(std::move(t));
    return p;
  }

  // String literals are decoded like Python's "unicode-escape" codec, as Jinja does.
  size_t lex_string(size_t p) {
    const size_t b = p;
    const char q = src_[p++];
    std::string value;
    while (true) {
      if (p >= src_.size()) error(b, "unterminated string literal");
      char c = src_[p++];
      if (c == q) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (p >= src_.size()) error(b, "unterminated string literal");
      char e = src_[p++];
      auto hex = [&](int n) {
        if (p + size_t(n) > src_.size()) error(b, "truncated \\x/\\u escape");
        char32_t v = 0;
        for (int k = 0; k < n; ++k) {
          char h = src_[p++];
          int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (d < 0) error(b, "invalid hex digit in escape");
          v = v * 16 + char32_t(d);
        }
        return v;
      };
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': unicode::append_utf8(value, hex(2)); break;
        case 'u': unicode::append_utf8(value, hex(4)); break;
        case 'U': unicode::append_utf8(value, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = char32_t(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) v = v * 8 + char32_t(src_[p++] - '0');
            unicode::append_utf8(value, v);
          } else {  // unknown escapes stay as written
            value += '\\';
            value += e;
          }
      }
    }
    out_.push_back({Token::Type::String, pos_at(b), std::move(value)});
    return p;
  }

  size_t lex_operator(size_t p, std::vector<char>& brackets) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (src_.substr(p, 2) == op) {
        out_.push_back({Token::Type::Op, pos_at(p), std::string(op)});
        return p + 2;
      }
    }
    char c = src_[p];
    if (!std::strchr("+-/*%~[](){}><=.:|,;", c) || c == 0) error(p, std::string("unexpected character '") + c + "'");
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty() || brackets.back() != c) error(p, std::string("unexpected '") + c + "'");
      brackets.pop_back();
    }
    out_.push_back({Token::Type::Op, pos_at(p), std::string(1, c)});
    return p + 1;
  }

  std::string_view src_;
  const Options& opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const Options& options) { return Lexer(source, options).run(); }

}  // namespace seek::tokenizer::jinja
