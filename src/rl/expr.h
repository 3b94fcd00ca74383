// Exact arithmetic over the expressions a model writes as a Countdown or arithmetic answer.
//
// The answer is model text, so it is parsed, never run: a recursive-descent parser for
//   expr   := term   (('+' | '-') term)*
//   term   := factor (('*' | '/') factor)*
//   factor := integer | '(' expr ')'
// over non-negative decimal integer literals, evaluated in exact rationals. The accepted
// alphabet is TinyZero's (digits, + - * / ( ) and whitespace) minus its '.': no unary minus or
// plus, no decimals, no '×' '÷' 'x' '^', no '=' (an answer "… = 65" is not an expression).
// Literals with a leading zero ("07") are rejected: the answer must use the numbers as given.
// Non-integer intermediates are fine ((7/2)*2 is 7), as TinyZero's eval would have them.
//
// Hostile text cannot blow the stack or the clock: the text is at most kMaxExprChars long and
// parentheses nest at most kMaxExprDepth deep (the recursion depth is bounded by the nesting);
// a literal of more than 18 digits or an intermediate that leaves int64 is "too large".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seek::rl {

inline constexpr size_t kMaxExprChars = 1024;
inline constexpr int kMaxExprDepth = 64;

// num/den in lowest terms with den > 0; both fit int64 (overflow is reported, never wrapped).
struct Rational {
  int64_t num = 0;
  int64_t den = 1;
  bool operator==(const Rational&) const = default;
  bool is_integer() const { return den == 1; }
  std::string str() const;  // "7", "-7/2"
};

// Exact operations; nullopt when the result (or a division by zero) cannot be represented.
// The caller tells the two apart by checking the divisor.
std::optional<Rational> add(Rational a, Rational b);
std::optional<Rational> sub(Rational a, Rational b);
std::optional<Rational> mul(Rational a, Rational b);
std::optional<Rational> div(Rational a, Rational b);

struct ExprResult {
  bool ok = false;
  std::string error;              // when !ok, e.g. "unexpected '=' at 12", "division by zero"
  Rational value;                 // when ok
  std::vector<int64_t> literals;  // the integer literals in the order written (when ok)
};

// Never throws: anything a model can write gives ok or an error message.
ExprResult evaluate_expression(std::string_view text);

// The text "a op b" of this grammar with parentheses only where it needs them: around a side
// whose top operation (a_op, b_op; 0 for a literal) binds looser than `op`, and around a right
// side of the same level after - or / (a - (b + c), a / (b * c)). a * (b / c) needs none: the
// values are exact rationals, so (a * b) / c is the same number. The Countdown solver and the
// tiny-R1 traces write their answers with it.
std::string join_expression(const std::string& a, char a_op, char op, const std::string& b, char b_op);

}  // namespace seek::rl
