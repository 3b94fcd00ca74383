#include "tokenizer/unicode.h"

namespace seek::tokenizer::unicode {

bool is_white_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_python_space(char32_t c) { return is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

char32_t next_code_point(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return char32_t(uint8_t(s[i + k])); };
  char32_t c = b(0);
  size_t len = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (len == 0 || i + len > s.size()) {  // malformed: one byte, never past the end
    i += 1;
    return kReplacement;
  }
  switch (len) {
    case 1: break;
    case 2: c = ((c & 0x1F) << 6) | (b(1) & 0x3F); break;
    case 3: c = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); break;
    default: c = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  i += len;
  return c;
}

size_t count_code_points(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (uint8_t(ch) & 0xC0) != 0x80;
  return n;
}

size_t decode_lossy_append(std::string& out, std::string_view bytes, bool final) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0, run = 0;  // [run, i) is valid UTF-8 not yet copied to `out`
  auto flush_run = [&] { out.append(bytes.data() + run, i - run); };
  auto replace = [&](size_t len) {  // one U+FFFD for the maximal subpart [i, i+len)
    flush_run();
    out += "\xEF\xBF\xBD";
    i += len;
    run = i;
  };
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The second byte's range is what makes the subpart "maximal": E0 80 is already invalid
    // (overlong), ED A0 is a surrogate, F4 90 is past U+10FFFF, so those lead bytes stand alone.
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      replace(1);  // 80..C1 and F5..FF never start a character
      continue;
    }
    int k = 1;
    for (; k < len; ++k) {
      if (i + k >= n) break;  // truncated by the end of the input
      uint8_t b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (k == len) {
      i += len;
    } else if (i + k >= n && !final) {
      flush_run();  // a valid prefix cut by the end: keep it for the caller to complete later
      return i;
    } else {
      replace(k);
    }
  }
  flush_run();
  return n;
}

}  // namespace seek::tokenizer::unicode
