#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace seek::tokenizer {
namespace {

// Unicode White_Space as class items (see unicode.h for why this set and not PCRE2's \s).
constexpr std::string_view kWhiteSpaceItems =
    "\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
constexpr std::string_view kWordItems = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
constexpr std::string_view kHexItems = "0-9a-fA-F";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match state: a match-data block sized for the whole-match pair only (find_all
// never reads groups) and a JIT stack larger than the 32 KiB default, so that long whitespace
// or letter runs cannot exhaust it.
struct ThreadState {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* mctx = pcre2_match_context_create(nullptr);
  ThreadState() { pcre2_jit_stack_assign(mctx, nullptr, stack); }
  ~ThreadState() {
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState s;
  return s;
}

}  // namespace

std::string translate_oniguruma(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      std::string_view items;
      if (e == 's' || e == 'S') items = kWhiteSpaceItems;
      if (e == 'w' || e == 'W') items = kWordItems;
      if (e == 'h' || e == 'H') items = kHexItems;
      bool negated = e == 'S' || e == 'W' || e == 'H';
      if (!items.empty() && !in_class) {
        out += negated ? "[^" : "[";
        out += items;
        out += ']';
      } else if (!items.empty() && !negated) {
        out += items;
      } else {
        out += c;  // any other escape, or a negated shorthand inside a class: copy as is
        out += e;
      }
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ']' is a literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX [:name:]
      size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 2;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

struct Regex::Compiled {
  std::string pattern;
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

std::shared_ptr<Regex::Compiled> compile_pcre2(std::string_view source, std::string_view pcre_pattern,
                                               uint32_t extra_options, const std::string& what) {
  auto c = std::make_shared<Regex::Compiled>();
  c->pattern = std::string(source);
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  // Oniguruma's newline is LF only; the PCRE2 build default might be ANYCRLF, which would change
  // what '.', '^' and '$' do around CR.
  pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE offset = 0;
  // MULTILINE: in Ruby syntax '^' and '$' are always line anchors. PCRE2_LITERAL admits no
  // pattern options besides UTF (none would change a literal match anyway).
  uint32_t options = (extra_options & PCRE2_LITERAL) ? PCRE2_UTF | PCRE2_LITERAL
                                                     : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | extra_options;
  c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre_pattern.data()), pcre_pattern.size(),
                          options, &err, &offset, cctx);
  pcre2_compile_context_free(cctx);
  if (!c->code) fail("{}: cannot compile regex at offset {}: {}", what, offset, pcre2_message(err));
  c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;
  return c;
}

}  // namespace

Regex Regex::compile(std::string_view pattern, const std::string& what) {
  Regex r;
  r.c_ = compile_pcre2(pattern, translate_oniguruma(pattern), 0, what);
  return r;
}

Regex Regex::literal(std::string_view text, const std::string& what) {
  Regex r;
  r.c_ = compile_pcre2(text, text, PCRE2_LITERAL, what);
  return r;
}

const std::string& Regex::pattern() const { return c_->pattern; }

void Regex::find_all(std::string_view subject, std::vector<Span>& out) const {
  ThreadState& ts = thread_state();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const size_t n = subject.size();
  size_t start = 0;
  bool have_prev = false;
  size_t prev_end = 0;
  while (start <= n) {
    // NO_UTF_CHECK: the tokenizer validated the whole input once; subjects are sub-ranges that
    // begin and end on character boundaries.
    int rc = c_->jit ? pcre2_jit_match(c_->code, s, n, start, PCRE2_NO_UTF_CHECK, ts.md, ts.mctx)
                     : pcre2_match(c_->code, s, n, start, PCRE2_NO_UTF_CHECK, ts.md, ts.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("regex {:?}: matching failed: {}", c_->pattern, pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
    size_t b = ov[0], e = ov[1];
    if (b == e) {
      if (!(have_prev && b == prev_end)) out.push_back({b, e});
      if (e >= n) break;
      start = e + 1;  // step over one whole character
      while (start < n && (uint8_t(subject[start]) & 0xC0) == 0x80) ++start;
    } else {
      out.push_back({b, e});
      start = e;
    }
    have_prev = true;
    prev_end = e;
  }
}

}  // namespace seek::tokenizer
