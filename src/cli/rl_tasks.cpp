#include "cli/rl_tasks.h"

#include <limits>

#include "core/error.h"
#include "core/io.h"
#include "generate/engine.h"
#include "rl/rewards.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

void add_task_flags(CLI::App* cmd, TaskFlags& f, const char* what, const std::string& max_tokens_flag) {
  cmd->add_option("-m,--model", f.model_dir,
                  "Model directory (config.json, *.safetensors, tokenizer.json with a chat template)")
      ->required();
  cmd->add_option("--task", f.task,
                  "\"countdown\" (problems generated from --seed) or a JSONL file of tasks: "
                  "{\"prompt\": ... or \"messages\": [...], plus the fields the reward reads}")
      ->required();
  cmd->add_option("--reward", f.reward,
                  "The checker: a name (countdown, arithmetic, format, language) or a JSON config "
                  "(default: countdown for --task countdown; required for a file)");
  cmd->add_option("--n,--problems", f.problems,
                  fmt::format("How many problems to {} (countdown default 100; a file: all)", what))
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f.seed,
                  "Seed of the Countdown problems and of sampling (request i uses seed + i)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature,--temp", f.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option(max_tokens_flag, f.max_tokens,
                  "Completion budget per problem (every generated token, thinking included)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--top-p", f.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("-c,--ctx", f.ctx,
                  "Context per sequence in tokens (prompt + completion); 0 = the model's maximum")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", f.batch, "Sequences decoded together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--precise", f.precise, "F32 activations (default: BF16): results that do not depend on which "
                "sequences share a batch (reproducible runs)");
  add_load_flags(cmd, f.load);
}

std::vector<rl::EvalTask> load_task_list(const TaskFlags& f, rl::CountdownSplit split,
                                         int64_t default_problems) {
  if (f.task == "countdown")
    return rl::countdown_tasks(uint64_t(f.seed), f.problems > 0 ? f.problems : default_problems,
                               split);
  return rl::load_tasks(f.task, f.problems);
}

std::unique_ptr<rl::Reward> make_task_reward(const TaskFlags& f) {
  if (f.reward.empty()) {
    if (f.task != "countdown")
      fail("--task {} is a file: say how to check it with --reward (e.g. --reward arithmetic or "
           "--reward '{{\"name\": \"countdown\"}}')",
           f.task);
    return rl::make_reward("countdown");
  }
  const size_t at = f.reward.find_first_not_of(" \t\n");
  const char c = at == std::string::npos ? ' ' : f.reward[at];
  if (c == '{' || c == '[' || c == '"') return rl::make_reward(parse_json(f.reward, "--reward"));
  return rl::make_reward(f.reward);
}

std::vector<rl::Attempt> run_task_list(const TaskFlags& f, std::span<const rl::EvalTask> tasks,
                                       const rl::Reward& reward, int samples,
                                       const std::string& label) {
  // Tokenizer and template first: a missing file should not cost a model load.
  check_model_dir(f.model_dir);
  const std::unique_ptr<tokenizer::Tokenizer> tok = load_tokenizer(f.model_dir);
  const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(f.model_dir);
  const std::unique_ptr<model::Model> model = load_model(f.model_dir, f.load);

  generate::EngineOptions eo;
  eo.max_seqs = f.batch;
  eo.cache_slots = 0;
  eo.context = f.ctx;
  // The KV cache commits memory only as positions are written (as for `seek run`).
  eo.kv_budget_bytes = std::numeric_limits<int64_t>::max();
  eo.precise = f.precise;
  generate::Engine engine(*model, tok.get(), eo);

  rl::RunOptions ro;
  ro.sampling.temperature = f.temperature;
  ro.sampling.top_p = f.top_p;
  ro.sampling.top_k = f.top_k;
  ro.sampling.seed = uint64_t(f.seed);
  ro.max_tokens = f.max_tokens;
  ro.samples = samples;
  const bool tty = stderr_is_tty();
  ro.progress = [&](int64_t done, int64_t total, int64_t correct) {
    const std::string line = fmt::format("{} {}/{} ({} correct)", label, done, total, correct);
    if (tty) write_stderr("\r" + line + "\x1b[K" + (done == total ? "\n" : ""));
    else if (done == total || done % std::max<int64_t>(1, total / 10) == 0)
      write_stderr(line + "\n");
  };
  return rl::run_tasks(engine, tmpl, tasks, reward, ro);
}

}  // namespace seek::cli
