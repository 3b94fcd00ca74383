// seek rm: train a Bradley–Terry reward model (a scalar score head on a Seek model) from
// preference pairs; its checkpoints plug into `seek grpo` as {"name": "rm", "model": DIR}.
#include "cli/common.h"
#include "rl/reward_model.h"

namespace seek::cli {

Command add_rm(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "rm", "Train a reward model (Bradley–Terry score head) on preference pairs");
  add_train_flags(cmd, *f, "Config (JSON with // comments; see configs/rm-example.json)");
  cmd->footer(
      "Pairs are JSONL records {\"prompt\": str | [messages], \"chosen\": str, \"rejected\": str}.\n"
      "Writes OUT/metrics.jsonl (loss, held-out pairwise accuracy), OUT/report.html and checkpoints\n"
      "OUT/step-N, OUT/final: the model plus score.weight [1, hidden]. Then, in a `seek grpo` config:\n"
      "  \"reward\": [{\"name\": \"rm\", \"model\": \"OUT/final\", \"weight\": 1.0}]");
  return {cmd, [f] {
            rl::run_reward_model_training(f->load<rl::RmConfig>(), f->options<train::RunOptions>());
            return 0;
          }};
}

}  // namespace seek::cli
