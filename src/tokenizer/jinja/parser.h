// Tokens -> syntax tree, by recursive descent with Jinja's operator precedence (lowest first):
//   x if c else y;  or;  and;  not;  == != < <= > >= in, not in;  + -;  ~;  * / // %;  **;
//   unary - +;  then postfix . [] () and, binding tightest, | filter and `is` test.
#pragma once
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace seek::tokenizer::jinja {

Body parse(const std::vector<Token>& tokens, const Options& options);

}  // namespace seek::tokenizer::jinja
