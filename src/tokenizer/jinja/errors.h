// Errors of the Jinja interpreter. Everything that reaches the caller is a seek::Error whose
// message starts with "NAME:LINE:COL:"; builtins that do not know the position throw
// jinja::Failure and the interpreter adds the position of the expression that called them.
#pragma once
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "tokenizer/jinja/ast.h"

namespace seek::tokenizer::jinja {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail_at(const std::string& name, Pos pos, const std::string& message) {
  fail("{}:{}:{}: {}", name, pos.line, pos.col, message);
}

}  // namespace seek::tokenizer::jinja
