// Template source -> tokens, including Jinja's whitespace control, which is a lexer matter:
// the text before a tag loses trailing whitespace for `{%-`, or its last line's indentation
// under lstrip_blocks; the text after a tag loses leading whitespace for `-%}`, or one newline
// under trim_blocks.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/template.h"

namespace seek::tokenizer::jinja {

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };
  Type type;
  Pos pos;
  std::string text;  // Text, Name, String (unescaped), Op
  int64_t int_value = 0;
  double float_value = 0;
};

// Jinja first turns every CRLF and CR into LF and drops one trailing newline
// (keep_trailing_newline is off); `source` must already be in that form (see normalize_newlines).
std::vector<Token> lex(std::string_view source, const Options& options);
std::string normalize_newlines(std::string_view source);

}  // namespace seek::tokenizer::jinja
