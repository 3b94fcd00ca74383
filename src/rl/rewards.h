// The rule-based rewards of R1 (accuracy, format, language consistency), their weighted sum, and
// the factory that builds any of them from a JSON config. Countdown lives in rl/countdown.h.
//
// Configs (make_reward); a bare string is {"name": that string}:
//   {"name": "countdown",  "correct": 1.0, "format": 0.1}   tiered accuracy (defaults shown)
//   {"name": "arithmetic", "correct": 1.0, "format": 0.1}
//   {"name": "format"}                                      1 when check_format passes, else 0
//   {"name": "language"}                                    share of letters in the prompt's script
//   {"name": "sum", "terms": [{"reward": "countdown", "weight": 1.0},
//                             {"reward": "language",  "weight": 0.1}]}
//   {"name": "rm", "model": DIR, "weight": 1.0}              weight · a `seek rm` model's score
//                                                           (rl/reward_model.h); loads DIR
// The spec's small-Countdown rule (1.0 correct, 0.1 format only, 0 otherwise) is the accuracy
// rewards' own tiering, so "countdown" alone is TinyZero's reward. The sum adds shaping terms
// on top (R1 adds language consistency to accuracy); to score accuracy and format as separate
// terms instead, give the accuracy reward "format": 0 and add a "format" term.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rl/answer_format.h"
#include "rl/expr.h"
#include "rl/reward.h"

namespace seek::rl {

// 1.0 when the completion has the R1 format (check_format in answer_format.h), else 0.
class FormatReward : public Reward {
 public:
  std::string name() const override { return "format"; }
  RewardResult score(const RewardInput& in) const override;
};

// A number written as an integer ("-84"), a fraction ("7/2", "-7/2") or a decimal ("3.50"),
// surrounded by optional whitespace; nullopt for anything else ("84.", "1e3", "x = 84").
std::optional<Rational> parse_number(std::string_view text);

// Accuracy on arithmetic: the last <answer> holds a number exactly equal to the task's answer.
// Task: {"answer": 84 | "84" | "7/2" | "3.5"} or {"expression": "12*(3+4)"} (evaluated exactly
// by rl/expr.h), or both (they must agree). Tiered like Countdown.
class ArithmeticReward : public Reward {
 public:
  explicit ArithmeticReward(TierValues values = {}) : values_(values) {}
  std::string name() const override { return "arithmetic"; }
  RewardResult score(const RewardInput& in) const override;
  static Rational task_answer(const nlohmann::json& task);  // throws seek::Error naming the field

 private:
  TierValues values_;
};

// The writing systems told apart. Han covers kana too (Japanese mixes both); Other is any letter
// of a script not listed. Digits, punctuation, symbols, spaces and emoji belong to none.
enum class Script {
  None, Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Hangul, Han, Other
};
Script script_of(char32_t code_point);
std::string_view script_name(Script s);

// R1's language-consistency reward: the share of the completion's letters (the four tags
// removed) written in the prompt's dominant script, in [0, 1]. Pass the user message as the
// prompt where possible: a chat template's own words are Latin. A prompt or completion without
// letters scores 1 (nothing to be inconsistent with). correct = every letter in that script.
// Invalid UTF-8 bytes are skipped.
class LanguageConsistencyReward : public Reward {
 public:
  std::string name() const override { return "language"; }
  RewardResult score(const RewardInput& in) const override;
};

// Σ weight_i · reward_i. `correct` is the first term's (list the verifiable reward first; later
// terms shape the reward); the reason lists every term's ("countdown: correct; language: 0.93").
class WeightedSumReward : public Reward {
 public:
  explicit WeightedSumReward(std::vector<std::pair<double, std::unique_ptr<Reward>>> terms);
  std::string name() const override { return "sum"; }
  RewardResult score(const RewardInput& in) const override;
  // Each term scores the whole batch (a reward model's one forward over a group).
  std::vector<RewardResult> score_batch(std::span<const RewardInput> in) const override;

 private:
  std::vector<std::pair<double, std::unique_ptr<Reward>>> terms_;
};

// Builds a reward from its config (see the top of this file). Throws seek::Error for an unknown
// name, an unknown field or a field of the wrong type, naming it.
std::unique_ptr<Reward> make_reward(const nlohmann::json& config);

}  // namespace seek::rl
