// Countdown, the small-model R1-Zero task of TinyZero: reach a target from 3 or 4 numbers with
// + - * / and parentheses, each number used exactly once. The answer is checked exactly (parsed
// and evaluated in rationals, rl/expr.h), never run.
//
// The task record (JSONL, one per line) is {"numbers": [19, 36, 55, 7], "target": 65,
// "solution": "..."}; the reward reads only numbers and target, the solution feeds SFT traces.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "rl/answer_format.h"
#include "rl/reward.h"

namespace seek::rl {

struct CountdownProblem {
  std::vector<int> numbers;  // in prompt order
  int target = 0;
  std::string solution;  // an expression over `numbers` whose value is `target`

  nlohmann::json to_json() const;
  // Throws seek::Error naming the field for a record that is not a Countdown task.
  static CountdownProblem from_json(const nlohmann::json& j);
};

// The user message, exactly TinyZero's instruct prompt; numbers print as "[19, 36, 55, 7]".
std::string countdown_prompt(std::span<const int> numbers, int target);

// One expression over all `numbers` (each once, any order) whose exact value is `target`, or
// nullopt when none exists. Exhaustive: every pair is combined with every operation in both
// orders, recursively (3,888 complete expressions for 4 numbers). A solution whose intermediates
// are all non-negative integers is preferred (it makes a readable SFT trace); fractions are
// tried only when there is none. Parentheses are printed only where the grammar needs them.
std::optional<std::string> solve_countdown(std::span<const int> numbers, int64_t target);

struct CountdownOptions {
  int min_count = 3, max_count = 4;  // how many numbers
  int max_number = 99;               // numbers are 1..max_number
  int max_target = 999;              // targets are 1..max_target
};

// Deterministic for a seed on every platform: std::mt19937_64's output is fixed by the standard,
// and the draws below use it directly (std::uniform_int_distribution differs between libraries).
// Each problem comes from a random expression tree over freshly drawn numbers: pairs are joined
// with random operations until one value is left, as a person writes a Countdown solution: every
// intermediate a positive integer (divisions exact), no step that does nothing (* 1, / 1). The
// tree is accepted when its value is a target in 1..max_target and becomes the solution.
class CountdownGenerator {
 public:
  explicit CountdownGenerator(uint64_t seed, CountdownOptions options = {});
  CountdownProblem next();

 private:
  int64_t uniform(int64_t lo, int64_t hi);  // inclusive, unbiased (rejection sampling)
  std::optional<CountdownProblem> try_tree(const std::vector<int>& numbers);

  std::mt19937_64 rng_;
  CountdownOptions options_;
};

// The Countdown reward: the last <answer> must hold an expression over exactly the task's
// numbers (as a multiset: each once, none missing, none extra) whose value is the target.
// Tiered values (default 1.0 correct / 0.1 format only / 0), see answer_format.h.
class CountdownReward : public Reward {
 public:
  explicit CountdownReward(TierValues values = {}) : values_(values) {}
  std::string name() const override { return "countdown"; }
  RewardResult score(const RewardInput& in) const override;

 private:
  TierValues values_;
};

// Why an answer is not a correct Countdown solution, or nullopt when it is one.
std::optional<std::string> countdown_mistake(std::string_view answer, std::span<const int> numbers,
                                             int64_t target);

}  // namespace seek::rl
