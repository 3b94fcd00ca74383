// Rejection sampling for SFT data (R1's second stage): K sampled completions per problem, and
// only the ones that are both verified correct (the task's reward) and well-formed (the R1
// format rule, answer_format.h) become training conversations. The thinking goes into the
// assistant message's reasoning_content, split off by the engine's reasoning splitter, the way
// DeepSeek's API returns it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "rl/eval.h"

namespace seek::rl {

// {"messages": [...the task's messages..., {"role": "assistant", "content": answer,
//                                           "reasoning_content": thinking}]}
nlohmann::json sft_record(const EvalTask& task, const Attempt& a);

struct SampleStats {
  int64_t total = 0;    // completions generated
  int64_t correct = 0;  // verified correct (well-formed or not)
  int64_t kept = 0;     // correct and well-formed: written
};

// The SFT records of the attempts that are correct and well-formed, in (task, sample) order.
std::vector<nlohmann::json> keep_verified(std::span<const EvalTask> tasks,
                                          std::span<const Attempt> attempts, SampleStats* stats);

// One compact JSON object per line, written atomically (temp file + rename): an interrupted run
// never leaves a half-written dataset behind.
void write_jsonl(const std::string& path, std::span<const nlohmann::json> records);

}  // namespace seek::rl
