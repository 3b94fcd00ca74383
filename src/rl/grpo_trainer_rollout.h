// The generation half of a GRPO step (grpo_trainer.h): the step's prompts, and G sampled
// completions of each from one engine batch.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "generate/engine.h"
#include "rl/eval.h"

namespace seek::rl {

// splitmix64 of a combination: the one hash every seeded choice of a run is derived from.
uint64_t seed_mix(uint64_t a, uint64_t b);

// The training prompts of a run: Countdown problems of the train split, or the records of a
// JSONL file visited epoch by epoch in a per-epoch shuffled order.
class TaskSource {
 public:
  explicit TaskSource(const std::string& task);  // "countdown" or a JSONL path
  // The `n` tasks of step `step` (a pure function of seed and step).
  std::vector<EvalTask> step_tasks(uint64_t seed, int64_t step, int64_t n) const;
  // `n` tasks to evaluate on: held-out Countdown problems, or the file's first n records (a
  // file has no held-out part: that is a training-set accuracy).
  std::vector<EvalTask> eval_tasks(uint64_t seed, int64_t n) const;
  bool held_out() const { return countdown_; }

 private:
  bool countdown_ = false;
  std::vector<EvalTask> tasks_;
};

struct RolloutOptions {
  generate::SamplingParams sampling;  // seed: the step's; request (p, i) gets a hash of it
  int64_t group = 1;                  // G completions per prompt
  int64_t max_tokens = 256;           // generated tokens per completion
  bool precise = false;               // F32 activations
};

struct Completion {
  size_t prompt = 0;             // index into the prompts
  std::vector<int32_t> tokens;   // sampled ids, EOS included when it ended the completion
  std::string text;              // what the reward reads ("<think>\n" prepended when the
                                 // prompt opened the thinking, special tokens dropped)
  generate::FinishReason finish = generate::FinishReason::Stop;
  int64_t cached_tokens = 0;     // prompt positions copied from another completion's KV rows
};

// Samples `group` completions of every prompt with one engine over `model`, decoded as one batch:
// the first completion of each prompt prefills it, the others copy its KV rows and join one
// step later. Requests are handed over only while the engine is paused, so the schedule is the
// same on every run. Completions come back in (prompt, sample) order; without a tokenizer
// their text is empty (benchmarks). Throws seek::Error when a generation fails or a prompt
// leaves no room for max_tokens in the model's context.
std::vector<Completion> rollout(const model::Model& model, const tokenizer::Tokenizer* tok,
                                std::span<const ChatPrompt> prompts, const RolloutOptions& opt);

}  // namespace seek::rl
