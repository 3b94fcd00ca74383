// UTF-8 and Unicode helpers shared by the tokenizer and the chat-template interpreter.
//
// The only character properties the tokenizer needs itself are the whitespace sets; general
// categories (\p{L}, \p{N}, ...) are PCRE2's job. Two different "whitespace" sets matter, and they
// must not be confused:
//   - Unicode White_Space: what Oniguruma's \s and Rust's char::is_whitespace mean, so what the
//     Hugging Face tokenizer regexes and added-token lstrip/rstrip see.
//   - Python's str.isspace(): White_Space plus U+001C..U+001F. Jinja's `-%}` trimming and
//     str.strip()/split() in chat templates run on Python strings, so they use this one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace seek::tokenizer::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

// Unicode White_Space (PropList.txt): 0009-000D, 0020, 0085, 00A0, 1680, 2000-200A, 2028, 2029,
// 202F, 205F, 3000. Not U+180E (Cf since Unicode 6.3), U+200B, U+FEFF or U+001C-U+001F.
bool is_white_space(char32_t c);

// Python str.isspace(): White_Space plus the four information separators U+001C-U+001F.
bool is_python_space(char32_t c);

void append_utf8(std::string& out, char32_t c);

// Decodes the code point at s[i] and advances i. Meant for valid UTF-8; on malformed input it
// returns U+FFFD for one byte and never reads past the end.
char32_t next_code_point(std::string_view s, size_t& i);

// Number of code points in valid UTF-8.
size_t count_code_points(std::string_view s);

// Appends `bytes` decoded as UTF-8 to `out`, replacing each maximal invalid subpart (Unicode
// "maximal subpart" practice, as Rust's String::from_utf8_lossy and the WHATWG decoder do) with
// one U+FFFD. If `final` is false, a trailing sequence that is a valid but incomplete prefix of a
// character is left unconsumed, because later bytes may complete it. Returns the number of bytes
// consumed, which is bytes.size() when `final` is true.
size_t decode_lossy_append(std::string& out, std::string_view bytes, bool final);

inline std::string decode_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  decode_lossy_append(out, bytes, true);
  return out;
}

}  // namespace seek::tokenizer::unicode
