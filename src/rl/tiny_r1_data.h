// The generated data of the tiny-R1 demonstration (`seek make-data`, scripts/tiny-r1): the base
// model's pretraining corpus and the cold-start SFT traces for Countdown.
//
// The traces teach a search a model of a few million parameters can execute, not a solution it
// would have to guess. For three numbers it is exhaustive in a fixed order:
//
//   for each pair (1st,2nd), (1st,3rd), (2nd,3rd), larger value first:
//     for op in + - * / (− only when larger > smaller; * and / never by 1; / only when exact):
//       line "p op q = w:" followed by the final step with the remaining value r, in the order
//       w+r, larger−smaller, w*r (only when at most kMaxTarget: a larger product is never a
//       target), larger/smaller (exact), each written "a op b=v"; stop at the target.
//
//   19 36 7 → 62:   36+19=55: 55+7=62
//
// Every intermediate is a positive integer, as in the generator's solutions, so the search finds
// every generated three-number problem. Four numbers first combine one pair, the first pair and
// operation in the same fixed order after which the three-value search succeeds ("36+19=55, left
// 55 55 7"), then search the three values. That first choice is the one step the trace does not
// derive (showing the failed three-value searches would make traces too long for the model and
// the CPU): it is what SFT teaches only partly and what GRPO has room to improve.
//
// Only problems of the training split (countdown_split) become traces or corpus text; every
// trace's answer is checked by the Countdown checker before it is kept.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rl/countdown.h"
#include "tokenizer/fwd.h"
#include "train/bpe_trainer.h"

namespace seek::rl {

inline constexpr int kMaxTarget = 999;  // Countdown targets are 1..999 (CountdownOptions)

struct CountdownTrace {
  std::string reasoning;  // the search lines, '\n'-separated, no leading or trailing newline
  std::string answer;     // the expression found, e.g. "(36 + 19) * 7"
  int lines = 0;          // search lines written (the trace's length)
};

// The search above; nullopt when it fails or would need more than `max_lines` lines.
std::optional<CountdownTrace> countdown_trace(const CountdownProblem& p, int max_lines = 10);

// The assistant turn as the model writes it: "<think>\nREASONING\n</think>\n\n<answer> X
// </answer>", the layout of DeepSeek-R1's outputs (what generate::ReasoningSplitter splits).
std::string trace_completion(const CountdownTrace& t);

// {"messages": [{"role": "user", "content": countdown_prompt}, {"role": "assistant", "content":
// "<answer> X </answer>", "reasoning_content": REASONING}]}: the `seek sft` record.
nlohmann::json countdown_sft_record(const CountdownProblem& p, const CountdownTrace& t);

struct TraceSetStats {
  int64_t drawn = 0;         // problems drawn from the generator
  int64_t eval_split = 0;    // skipped: held-out problems
  int64_t too_long = 0;      // skipped: the search failed or exceeded max_lines
  int64_t kept = 0;
};

// `n` SFT records for distinct training-split problems drawn from CountdownGenerator(seed), each
// answer verified by countdown_mistake (a failure would be a bug here: it throws).
std::vector<nlohmann::json> make_sft_traces(uint64_t seed, int64_t n, int max_lines,
                                            TraceSetStats* stats = nullptr);

// ---- the base corpus ----

// Shares of the corpus by bytes. Each paragraph (blank-line separated) is one kind.
struct CorpusMix {
  double arithmetic = 0.25;  // "47+38=85" facts, the single steps of every search line
  double countdown = 0.15;   // plain-text searches over training-split problems, step by step
  double chat = 0.10;        // arithmetic questions in the chat template with <think>/<answer>
  double prompt = 0.45;      // training-split Countdown prompts (the task's exact wording) in the
                             // chat template, answered with their search trace
  double text = 0.05;        // short English sentences
  int prompt_lines = 10;     // the longest search a `prompt` paragraph shows (countdown_trace)
};

enum class CorpusKind { Arithmetic, Countdown, Chat, Prompt, Text };
inline constexpr int kCorpusKinds = 5;

struct CorpusStats {
  int64_t bytes[kCorpusKinds] = {};
  int64_t paragraphs[kCorpusKinds] = {};
};

// About `bytes` bytes of paragraphs separated by blank lines, kinds interleaved at random with the
// mix's shares; deterministic for a seed. The chat paragraphs are rendered with DeepSeek-V3's
// chat template (train/chat_template.h, the template `seek train` gives every model it trains).
std::string make_base_corpus(uint64_t seed, int64_t bytes, const CorpusMix& mix,
                             CorpusStats* stats = nullptr);

// Which kind a corpus paragraph is, read from its text alone (tests check the mix with it).
CorpusKind classify_paragraph(std::string_view paragraph);

// ---- the tokenizer ----

// A byte-level BPE tokenizer (train::train_bpe: DeepSeek-V3's pre-tokenizer, added tokens and
// chat template) trained on the corpus with its digits removed, plus `extra` texts (the
// Countdown prompt's words). No merge joins two digits, so every number is written digit by digit:
// a tiny model then learns addition and multiplication as carries over ten symbols, not as a
// lookup table over the hundreds of multi-digit tokens BPE would otherwise make of a corpus this
// full of numbers ("385" would be "38" "5", "1040" "104" "0").
train::BpeResult digit_tokenizer(const std::string& corpus, const std::vector<std::string>& extra,
                                 int64_t vocab_size);

// The corpus cut into documents as `seek train` cuts files (train::split_documents, ~doc_bytes
// each), each encoded as BOS, ids, EOS: the raw little-endian uint32 token file of `seek train`'s
// "tokens" data source.
std::vector<int32_t> encode_corpus(const std::string& corpus, const tokenizer::Tokenizer& tok,
                                   size_t doc_bytes);

// Training-split Countdown task records for `seek eval --task FILE` / `seek sample --task FILE`:
// {"prompt": countdown_prompt, "numbers": [...], "target": t}.
std::vector<nlohmann::json> make_prompt_records(uint64_t seed, int64_t n);

}  // namespace seek::rl
