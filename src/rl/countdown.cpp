#include "rl/countdown.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "core/error.h"
#include "rl/expr.h"

namespace seek::rl {

nlohmann::json CountdownProblem::to_json() const {
  return {{"numbers", numbers}, {"target", target}, {"solution", solution}};
}

CountdownProblem CountdownProblem::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("countdown task: expected a JSON object, got {}", j.type_name());
  CountdownProblem p;
  auto numbers = j.find("numbers");
  if (numbers == j.end() || !numbers->is_array() || numbers->empty())
    fail("countdown task: field \"numbers\" must be a non-empty array of integers");
  for (const auto& n : *numbers) {
    if (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > 1'000'000)
      fail("countdown task: field \"numbers\" holds {}, not an integer in 0..1000000", n.dump());
    p.numbers.push_back(n.get<int>());
  }
  auto target = j.find("target");
  if (target == j.end() || !target->is_number_integer())
    fail("countdown task: field \"target\" must be an integer");
  int64_t t = target->get<int64_t>();
  if (t < -1'000'000'000 || t > 1'000'000'000)
    fail("countdown task: field \"target\" {} is out of range", t);
  p.target = static_cast<int>(t);
  if (auto s = j.find("solution"); s != j.end()) {
    if (!s->is_string()) fail("countdown task: field \"solution\" must be a string");
    p.solution = s->get<std::string>();
  }
  return p;
}

std::string countdown_prompt(std::span<const int> numbers, int target) {
  return fmt::format(
      "Using the numbers [{}], create an equation that equals {}. You can use basic arithmetic "
      "operations (+, -, *, /) and each number can only be used once. Show your work in <think> "
      "</think> tags. And return the final answer in <answer> </answer> tags, for example "
      "<answer> (1 + 2) / 3 </answer>.",
      fmt::join(numbers, ", "), target);
}

namespace {

// A sub-expression: its exact value, its text and its top operation (0 for a number).
struct Item {
  Rational value;
  std::string text;
  char op = 0;
};

Item join(const Item& a, char op, const Item& b, Rational value) {
  return {value, join_expression(a.text, a.op, op, b.text, b.op), op};
}

// Depth-first over "join two items into one"; with `naturals`, only non-negative integer
// intermediates (the first pass, for solutions a person would write).
bool solve(std::vector<Item>& items, Rational target, bool naturals, std::string& out) {
  if (items.size() == 1) {
    if (items[0].value != target) return false;
    out = items[0].text;
    return true;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    for (size_t j = i + 1; j < items.size(); ++j) {
      std::vector<Item> rest;
      for (size_t k = 0; k < items.size(); ++k)
        if (k != i && k != j) rest.push_back(items[k]);
      const Item a = items[i], b = items[j];
      // Both orders of - and /; + and * are commutative, one order suffices.
      const std::pair<char, std::pair<const Item*, const Item*>> cands[] = {
          {'+', {&a, &b}}, {'*', {&a, &b}}, {'-', {&a, &b}},
          {'-', {&b, &a}}, {'/', {&a, &b}}, {'/', {&b, &a}}};
      for (const auto& [op, xy] : cands) {
        const Item& x = *xy.first;
        const Item& y = *xy.second;
        std::optional<Rational> v = op == '+'   ? add(x.value, y.value)
                                    : op == '*' ? mul(x.value, y.value)
                                    : op == '-' ? sub(x.value, y.value)
                                                : div(x.value, y.value);
        if (!v) continue;  // division by zero
        if (naturals && (!v->is_integer() || v->num < 0)) continue;
        rest.push_back(join(x, op, y, *v));
        if (solve(rest, target, naturals, out)) return true;
        rest.pop_back();
      }
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> solve_countdown(std::span<const int> numbers, int64_t target) {
  if (numbers.empty()) return std::nullopt;
  std::vector<Item> items;
  for (int n : numbers) items.push_back({Rational{n, 1}, std::to_string(n), 0});
  std::string out;
  for (bool naturals : {true, false})
    if (solve(items, Rational{target, 1}, naturals, out)) return out;
  return std::nullopt;
}

CountdownGenerator::CountdownGenerator(uint64_t seed, CountdownOptions options)
    : rng_(seed), options_(options) {
  const auto& o = options_;
  if (o.min_count < 2 || o.max_count < o.min_count || o.max_count > 6)
    fail("countdown generator: number count {}..{} must lie within 2..6", o.min_count, o.max_count);
  if (o.max_number < 1 || o.max_number > 10000)
    fail("countdown generator: max_number {} not in 1..10000", o.max_number);
  if (o.max_target < 1) fail("countdown generator: max_target {} must be at least 1", o.max_target);
}

int64_t CountdownGenerator::uniform(int64_t lo, int64_t hi) {
  // Reject the low 2^64 mod range outputs so that x % range is exactly uniform.
  const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  const uint64_t threshold = (0 - range) % range;
  uint64_t x;
  do x = rng_();
  while (x < threshold);
  return lo + static_cast<int64_t>(x % range);
}

std::optional<CountdownProblem> CountdownGenerator::try_tree(const std::vector<int>& numbers) {
  std::vector<Item> pool;
  for (int n : numbers) pool.push_back({Rational{n, 1}, std::to_string(n), 0});
  while (pool.size() > 1) {
    const auto i = static_cast<size_t>(uniform(0, static_cast<int64_t>(pool.size()) - 1));
    auto j = static_cast<size_t>(uniform(0, static_cast<int64_t>(pool.size()) - 2));
    if (j >= i) ++j;
    const char op = "+-*/"[uniform(0, 3)];
    const int64_t a = pool[i].value.num, b = pool[j].value.num;
    // No step that does nothing (x * 1, x / 1; a zero from x - x goes with the negatives below):
    // such problems are easier than they look. Every division is exact.
    // Intermediates stay <= 1e9, so a * b fits int64.
    if ((op == '*' || op == '/') && b == 1) return std::nullopt;
    if (op == '*' && a == 1) return std::nullopt;
    if (op == '/' && a % b != 0) return std::nullopt;
    const int64_t v = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    // Negative intermediates are valid but not how a person writes a solution; huge products
    // can never come back down to a target (only exact division shrinks them).
    if (v <= 0 || v > 1'000'000'000) return std::nullopt;
    Item joined = join(pool[i], op, pool[j], Rational{v, 1});
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(std::max(i, j)));
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(std::min(i, j)));
    pool.push_back(std::move(joined));
  }
  const int64_t value = pool[0].value.num;
  if (value < 1 || value > options_.max_target) return std::nullopt;
  return CountdownProblem{numbers, static_cast<int>(value), pool[0].text};
}

CountdownProblem CountdownGenerator::next() {
  // The count is drawn once so that 3 and 4 numbers come equally often, although trees over 4
  // numbers are rejected more often. Bounded only to turn impossible options into an error.
  const auto count = static_cast<size_t>(uniform(options_.min_count, options_.max_count));
  for (int attempt = 0; attempt < 1'000'000; ++attempt) {
    std::vector<int> numbers(count);
    for (int& n : numbers) n = static_cast<int>(uniform(1, options_.max_number));
    if (auto p = try_tree(numbers)) return *p;
  }
  fail("countdown generator: no problem found with these options");
}

std::optional<std::string> countdown_mistake(std::string_view answer, std::span<const int> numbers,
                                             int64_t target) {
  ExprResult e = evaluate_expression(answer);
  if (!e.ok) return "answer is not an expression: " + e.error;
  std::map<int64_t, int> given, used;
  for (int n : numbers) ++given[n];
  for (int64_t n : e.literals) ++used[n];
  for (const auto& [n, k] : used) {
    auto g = given.find(n);
    if (g == given.end()) return fmt::format("uses {}, which is not given", n);
    if (k > g->second) return fmt::format("uses {} {} times, given {}", n, k, g->second);
  }
  for (const auto& [n, k] : given) {
    const int u = used[n];
    if (u == 0) return fmt::format("does not use {}", n);
    if (u < k) return fmt::format("uses {} only {} of {} times", n, u, k);
  }
  if (e.value != Rational{target, 1})
    return fmt::format("equals {}, not {}", e.value.str(), target);
  return std::nullopt;
}

RewardResult CountdownReward::score(const RewardInput& in) const {
  const CountdownProblem p = CountdownProblem::from_json(in.task);
  const FormatCheck format = check_format(in.prompt, in.completion);
  std::optional<std::string_view> answer = last_answer(in.completion);
  if (!answer) return tiered_result(values_, false, format, "no <answer>…</answer>");
  std::optional<std::string> mistake = countdown_mistake(*answer, p.numbers, p.target);
  return tiered_result(values_, !mistake, format, mistake.value_or(""));
}

}  // namespace seek::rl
