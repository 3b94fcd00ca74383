// The reward interface of R1-style post-training: a program, not a person, scores a completion.
// Rule-based checkers (answer, format, language, code run against tests) and a learned reward
// model all answer the same question: given the prompt, the model's completion and the task
// record the prompt came from, how good is the completion, and why.
//
// Rewards are pure with respect to the trainer: they never throw for anything a model can write
// (malformed answers score 0 with a reason); they throw seek::Error only for a broken task
// record or configuration (a missing field, a wrong type), naming the field.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seek::rl {

struct RewardInput {
  std::string_view prompt;      // the user message (or rendered prompt) the completion answers
  std::string_view completion;  // the model's whole output: "<think>…</think> … <answer>…</answer>"
  const nlohmann::json& task;   // the task record (e.g. {"numbers": [..], "target": 65})
};

struct RewardResult {
  double reward = 0.0;
  bool correct = false;  // the verifiable part passed (accuracy is the mean of this)
  std::string reason;    // short, human-readable: "correct", "no <answer> tag", "uses 7 twice"...
};

class Reward {
 public:
  virtual ~Reward() = default;
  virtual std::string name() const = 0;  // as written in configs and metrics ("countdown", ...)
  virtual RewardResult score(const RewardInput& in) const = 0;
  // Several completions at once (a GRPO group), results in order. Rewards with a batched path
  // (a reward model runs one forward over the group) override it; the default loops.
  virtual std::vector<RewardResult> score_batch(std::span<const RewardInput> in) const {
    std::vector<RewardResult> out;
    out.reserve(in.size());
    for (const RewardInput& i : in) out.push_back(score(i));
    return out;
  }
};

}  // namespace seek::rl
