// What `seek eval` and `seek sample` share: the model / task / reward / generation flags, opening
// the model with its chat template, and running the tasks with a progress line on stderr.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "rl/eval.h"

namespace seek::cli {

struct TaskFlags {
  std::string model_dir;
  std::string task;    // "countdown" or a JSONL file
  std::string reward;  // a reward name or its JSON config (rl/rewards.h)
  int64_t problems = -1;  // < 0: the command's default
  int64_t seed = 0;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  int64_t max_tokens = 1024;
  int64_t ctx = 4096;
  int batch = 8;
  std::string out;
  bool precise = false;
  LoadFlags load;
};

// Every flag but --out and sample's count of samples. The completion budget is
// `max_tokens_flag`: the commands spell it differently (eval's -n is the budget, sample's -n
// the samples per problem).
void add_task_flags(CLI::App* cmd, TaskFlags& f, const char* what, const std::string& max_tokens_flag);

// The tasks, with Countdown drawn from `split` (eval: the held-out problems; sample: training).
std::vector<rl::EvalTask> load_task_list(const TaskFlags& f, rl::CountdownSplit split,
                                         int64_t default_problems);
std::unique_ptr<rl::Reward> make_task_reward(const TaskFlags& f);

// Loads the model and its chat template, then runs the tasks, drawing "LABEL 12/100 (3
// correct)" on stderr (redrawn on a TTY, every tenth otherwise).
std::vector<rl::Attempt> run_task_list(const TaskFlags& f, std::span<const rl::EvalTask> tasks,
                                       const rl::Reward& reward, int samples,
                                       const std::string& label);

}  // namespace seek::cli
