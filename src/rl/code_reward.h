// The code reward of R1-style post-training: the completion's program is run against the task's
// stdin/stdout tests in the sandbox (rl/sandbox.h), and the reward is what the tests say.
//
// Task record: {"tests": [{"input": "...", "output": "..."}, ...], "timeout_s": 2,
// "memory_mb": 256} ("timeout_s" and "memory_mb" optional; they override the options' limits).
// The program is the last ```python (or ```py / ```python3) fenced block of the completion,
// looked for after the last "</think>" when there is one, so code drafted while thinking is not
// what gets run (an <answer> holding the fenced block is found the same way). It runs as
// /usr/bin/python3 -I -B /work/main.py, never a python from the user's PATH.
// Outputs match when they are equal after trimming trailing whitespace on every line and
// dropping trailing empty lines (the usual judge rule: "1 2 \n" == "1 2").
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "rl/reward.h"
#include "rl/sandbox.h"

namespace seek::rl {

struct CodeRewardOptions {
  bool all_pass = true;  // R1: 1 only when every test passes (stops at the first failure);
                         // false: the fraction of tests passed
  SandboxLimits limits;  // per test run
  std::string python = "/usr/bin/python3";
  std::string temp_root = "/tmp";
};

class CodeReward : public Reward {
 public:
  explicit CodeReward(CodeRewardOptions options = {}) : options_(std::move(options)) {}
  std::string name() const override { return "code"; }
  // reason: "passed 3/3 tests", or the first failure: "test 2: wrong output (expected "3", got
  // "4")", "test 1: timeout after 2 s", "test 1: cpu limit (2 s)", "test 1: exit status 1
  // (MemoryError)", "no ```python block", "test 1: sandbox setup failed: ...".
  RewardResult score(const RewardInput& in) const override;

 private:
  CodeRewardOptions options_;
};

// The program a completion submits (see above), or nothing when it has no closed python block.
std::optional<std::string> extract_program(std::string_view completion);

// The output as the tests compare it: trailing whitespace trimmed per line, trailing empty
// lines dropped, "\r\n" read as "\n".
std::string normalize_output(std::string_view text);

}  // namespace seek::rl
