// The R1 answer format, shared by the format reward and the answer checkers:
//   <think> reasoning </think> optional text <answer> final answer </answer>
//
// The format rule (check_format), exactly:
//   - the completion starts (after whitespace) with <think>, or the prompt ends (before
//     whitespace) with <think> and the completion starts inside the thinking: chat templates and
//     TinyZero's base prompt ("Let me solve this step by step.\n<think>") open it themselves;
//   - <think> and </think> each occur exactly once (no nested or repeated thinking);
//   - <answer> and </answer> each occur exactly once, both after </think>, in that order, with
//     something other than whitespace between them (no draft answers inside the thinking);
//   - only whitespace follows </answer> (the answer ends the completion).
// Text between </think> and <answer> is allowed ("So the equation is:").
//
// The answer checkers do not require the format: they read the LAST <answer>…</answer> wherever
// it is (last_answer), as TinyZero does, and the format only decides the partial-credit tier.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "rl/reward.h"

namespace seek::rl {

struct FormatCheck {
  bool ok = false;
  std::string reason;  // "format ok" or what is wrong: "no </think>", "<answer> inside <think>"...
};

FormatCheck check_format(std::string_view prompt, std::string_view completion);

// The text between the last </answer> and the last <answer> before it, trimmed of whitespace;
// nullopt when there is no such pair.
std::optional<std::string_view> last_answer(std::string_view completion);

std::string_view trim(std::string_view s);

// The tiered reward of an answer checker (the spec's small-Countdown values by default): `correct`
// for a correct answer, `format` for a wrong or missing answer in the right format, 0 otherwise.
struct TierValues {
  double correct = 1.0;
  double format = 0.1;
};

// Builds the result of an answer checker: `why` says what was wrong with the answer (ignored
// when correct); the format verdict is appended when it cost the partial credit.
RewardResult tiered_result(const TierValues& v, bool correct, const FormatCheck& format,
                           std::string why);

}  // namespace seek::rl
