// Evaluation of a model on verifiable tasks (`seek eval`), and the generation step that
// rejection sampling shares (`seek sample`, rl/sample.h):
//
//   tasks ─▶ chat template ─▶ prompt ids ─▶ Engine (all requests submitted, continuously
//   batched) ─▶ raw completion ─▶ Reward (the same checkers GRPO trains on) ─▶ Attempt
//   attempts ─▶ accuracy with its Wilson score interval, format rate, mean completion length
//
// Held-out Countdown problems: both `seek eval` and `seek sample` draw from CountdownGenerator,
// but every problem belongs to exactly one split, fixed by a hash of the problem itself (its
// numbers as a multiset and its target; countdown_split). Evaluation keeps only Eval-split
// problems and training data (SFT traces from `seek sample`, RL prompts) only Train-split ones,
// so no seed, count or generator change can put an evaluation problem into training; a seed
// only chooses which problems of a split are drawn.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "generate/engine.h"
#include "rl/countdown.h"
#include "rl/reward.h"
#include "tokenizer/fwd.h"

namespace seek::rl {

// One task: the conversation sent to the model and the record its reward reads.
struct EvalTask {
  nlohmann::json messages;  // OpenAI-style [{role, content}], the user's question last
  std::string prompt;       // that last user message (RewardInput::prompt)
  nlohmann::json record;    // task fields, e.g. {"numbers": [..], "target": 65}
};

// A JSONL record: {"prompt": "..."} or {"messages": [...]}, plus the task fields (the whole
// object is the reward's record). Throws seek::Error naming `source` and the field.
EvalTask task_from_json(const nlohmann::json& j, const std::string& source);
// Every non-blank line of a JSONL file (the first `limit` when limit >= 0); errors name
// PATH:LINE.
std::vector<EvalTask> load_tasks(const std::string& path, int64_t limit = -1);

enum class CountdownSplit { Train, Eval };
// One problem in 8 is held out for evaluation (FNV-1a of the sorted numbers and the target:
// the same on every platform, and independent of the order the numbers are shown in).
CountdownSplit countdown_split(const CountdownProblem& p);
// The first `n` problems of `split` drawn from CountdownGenerator(seed), as chat tasks with
// TinyZero's prompt (countdown_prompt).
std::vector<EvalTask> countdown_tasks(uint64_t seed, int64_t n, CountdownSplit split);

// A conversation rendered as `seek run` and `seek serve` render one: the model's chat template
// with the generation prompt, encoded without added special tokens (the template writes BOS),
// and whether it leaves the model inside <think> (R1 templates end with "<think>\n").
struct ChatPrompt {
  std::vector<int32_t> ids;
  bool starts_in_thinking = false;
};
ChatPrompt render_prompt(const tokenizer::ChatTemplate& tmpl, const tokenizer::Tokenizer& tok,
                         const nlohmann::json& messages);

struct RunOptions {
  generate::SamplingParams sampling;  // temperature 0: greedy. Request i gets seed + i.
  int64_t max_tokens = 1024;  // every generated token, thinking included
  int samples = 1;            // completions per task
  // Tests: a logits processor for (task, sample), e.g. generate::ScriptedLogits; null: none.
  std::function<std::shared_ptr<generate::LogitsProcessor>(size_t task, int sample)> processor;
  // Called on the calling thread after each completion is scored.
  std::function<void(int64_t done, int64_t total, int64_t correct)> progress;
};

// One completion of one task, scored.
struct Attempt {
  size_t task = 0;
  int sample = 0;
  // What the model wrote, tags included, as the reward sees it: "<think>\n" is prepended when
  // the prompt opened the thinking (so the format rule sees the whole block).
  std::string completion;
  std::string reasoning, answer;  // the engine's reasoning split (reasoning_content / content)
  RewardResult score;
  bool well_formed = false;  // check_format (answer_format.h)
  int64_t completion_tokens = 0;
  generate::FinishReason finish = generate::FinishReason::Stop;
};

// Runs samples × tasks completions through the engine, all submitted at once (as many as its
// queue takes: continuous batching runs them together), and scores each with `reward`. The
// engine needs a tokenizer. Attempts come back ordered by (task, sample). Throws seek::Error for
// a request the engine refuses or a generation that fails.
std::vector<Attempt> run_tasks(generate::Engine& engine, const tokenizer::ChatTemplate& tmpl,
                               std::span<const EvalTask> tasks, const Reward& reward,
                               const RunOptions& options);

// The Wilson score interval of a binomial proportion k / n at the normal quantile z (1.96: 95%).
// Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at 0 / n or n / n.
// n = 0: [0, 1].
struct Interval {
  double lo = 0.0, hi = 1.0;
};
Interval wilson_interval(int64_t k, int64_t n, double z = 1.959963984540054);

struct EvalSummary {
  int64_t n = 0, correct = 0, well_formed = 0;
  double accuracy = 0.0;
  Interval ci;  // 95% Wilson score interval of the accuracy
  double format_rate = 0.0;
  double mean_completion_tokens = 0.0;
};
EvalSummary summarize(std::span<const Attempt> attempts);

// A per-attempt record for --out: prompt, completion, reward, correct, reason, format, tokens,
// finish, task.
nlohmann::json attempt_json(const EvalTask& task, const Attempt& a);

}  // namespace seek::rl
