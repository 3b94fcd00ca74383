#include "rl/expr.h"

#include <fmt/format.h>

#include <limits>
#include <numeric>

namespace seek::rl {

namespace {

using i128 = __int128;

// Reduces n/d (d != 0) to lowest terms with a positive denominator. Products of two int64 fit
// in 127 bits, so every operation below is computed exactly in i128 and only then checked.
std::optional<Rational> make(i128 n, i128 d) {
  if (d < 0) n = -n, d = -d;
  i128 a = n < 0 ? -n : n, b = d;
  while (b != 0) {
    i128 t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) n /= a, d /= a;
  constexpr i128 lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  if (n < lo || n > hi || d > hi) return std::nullopt;
  return Rational{static_cast<int64_t>(n), static_cast<int64_t>(d)};
}

struct ParseError {
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  ExprResult run() {
    ExprResult r;
    try {
      if (s_.size() > kMaxExprChars)
        throw ParseError{fmt::format("longer than {} characters", kMaxExprChars)};
      skip_space();
      if (pos_ == s_.size()) throw ParseError{"empty expression"};
      r.value = expr();
      if (pos_ != s_.size()) unexpected();
      r.ok = true;
      r.literals = std::move(literals_);
    } catch (const ParseError& e) {
      r.error = e.message;
    }
    return r;
  }

 private:
  Rational expr() {
    Rational v = term();
    while (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      char op = s_[pos_++];
      skip_space();
      Rational rhs = term();
      v = checked(op == '+' ? add(v, rhs) : sub(v, rhs));
    }
    return v;
  }

  Rational term() {
    Rational v = factor();
    while (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
      char op = s_[pos_++];
      skip_space();
      Rational rhs = factor();
      if (op == '/' && rhs.num == 0) throw ParseError{"division by zero"};
      v = checked(op == '*' ? mul(v, rhs) : div(v, rhs));
    }
    return v;
  }

  Rational factor() {
    if (pos_ < s_.size() && s_[pos_] == '(') {
      if (++depth_ > kMaxExprDepth)
        throw ParseError{fmt::format("parentheses nested deeper than {}", kMaxExprDepth)};
      ++pos_;
      skip_space();
      Rational v = expr();
      if (pos_ >= s_.size() || s_[pos_] != ')') {
        if (pos_ >= s_.size()) throw ParseError{"missing ')'"};
        unexpected();
      }
      ++pos_;
      --depth_;
      skip_space();
      return v;
    }
    if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') return literal();
    if (pos_ >= s_.size()) throw ParseError{"expression ends early"};
    unexpected();
  }

  Rational literal() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    std::string_view digits = s_.substr(start, pos_ - start);
    if (digits.size() > 1 && digits[0] == '0')
      throw ParseError{fmt::format("number with a leading zero: {}", digits)};
    if (digits.size() > 18) throw ParseError{"number too large"};
    int64_t v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    literals_.push_back(v);
    skip_space();
    return Rational{v, 1};
  }

  Rational checked(std::optional<Rational> r) {
    if (!r) throw ParseError{"value too large"};
    return *r;
  }

  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  [[noreturn]] void unexpected() {
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7f)
      throw ParseError{fmt::format("unexpected '{}' at {}", s_[pos_], pos_)};
    throw ParseError{fmt::format("unexpected byte 0x{:02x} at {}", c, pos_)};
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<int64_t> literals_;
};

}  // namespace

std::string Rational::str() const {
  return den == 1 ? fmt::format("{}", num) : fmt::format("{}/{}", num, den);
}

std::optional<Rational> add(Rational a, Rational b) {
  return make(i128(a.num) * b.den + i128(b.num) * a.den, i128(a.den) * b.den);
}
std::optional<Rational> sub(Rational a, Rational b) {
  return make(i128(a.num) * b.den - i128(b.num) * a.den, i128(a.den) * b.den);
}
std::optional<Rational> mul(Rational a, Rational b) {
  return make(i128(a.num) * b.num, i128(a.den) * b.den);
}
std::optional<Rational> div(Rational a, Rational b) {
  if (b.num == 0) return std::nullopt;
  return make(i128(a.num) * b.den, i128(a.den) * b.num);
}

ExprResult evaluate_expression(std::string_view text) { return Parser(text).run(); }

std::string join_expression(const std::string& a, char a_op, char op, const std::string& b, char b_op) {
  auto precedence = [](char o) { return o == '+' || o == '-' ? 1 : 2; };
  const bool paren_a = a_op && precedence(a_op) < precedence(op);
  const bool paren_b = b_op && (precedence(b_op) < precedence(op) ||
                                (precedence(b_op) == precedence(op) && (op == '-' || op == '/')));
  return fmt::format("{} {} {}", paren_a ? "(" + a + ")" : a, op, paren_b ? "(" + b + ")" : b);
}

}  // namespace seek::rl
