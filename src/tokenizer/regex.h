// PCRE2 (JIT-compiled, UTF + UCP) standing in for the Oniguruma engine that Hugging Face
// `tokenizers` compiles its Split patterns with.
//
// The two engines agree on the syntax tokenizer.json files use (\p{..} classes, lookahead,
// alternation, bounded repeats) but not on every shorthand class, so patterns go through
// translate_oniguruma() first. Tables: PCRE2 10.42 ships Unicode 14; Oniguruma 6.9.8 ships 15.0,
// so characters first assigned in Unicode 15 may be classified differently.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace seek::tokenizer {

// Rewrites the escapes whose meaning differs between Oniguruma (Ruby syntax, UTF-8) and PCRE2 with
// PCRE2_UCP, outside and inside character classes:
//   \s, \S  Oniguruma: Unicode White_Space. PCRE2 adds U+180E (MONGOLIAN VOWEL SEPARATOR).
//   \w, \W  Oniguruma: Letter|Mark|Number|Connector_Punctuation. PCRE2 10.42: \p{L}, \p{N} and '_'.
//   \h, \H  Oniguruma: a hex digit. PCRE2: horizontal whitespace.
// The negated forms have no equivalent inside a character class, so there they keep PCRE2's
// meaning (the difference is U+180E and combining marks only).
std::string translate_oniguruma(std::string_view pattern);

struct Span {
  size_t begin, end;  // byte offsets [begin, end)
};

class Regex {
 public:
  // `pattern` is a tokenizer.json "Regex" string; `what` names it in error messages.
  static Regex compile(std::string_view pattern, const std::string& what);
  // A "String" split pattern: matched literally.
  static Regex literal(std::string_view text, const std::string& what);

  // Appends every non-overlapping match in `subject` (valid UTF-8), left to right, as
  // Oniguruma's find_iter returns them: an empty match directly after a match is skipped, and
  // after an empty match the search resumes one character later.
  void find_all(std::string_view subject, std::vector<Span>& out) const;

  const std::string& pattern() const;

  struct Compiled;  // opaque: the PCRE2 code object

 private:
  std::shared_ptr<const Compiled> c_;
};

}  // namespace seek::tokenizer
