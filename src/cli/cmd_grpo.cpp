// seek grpo: GRPO post-training (DeepSeek-R1's RL) of a Seek model on a verifiable task, with
// rollouts from the engine's batched decoding (rl/grpo_trainer.h).
#include "cli/common.h"
#include "rl/grpo_trainer.h"

namespace seek::cli {

Command add_grpo(CLI::App& app) {
  struct Flags : TrainFlags {
    bool precise = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "grpo", "Post-train a model with GRPO on a task checked by rewards (Countdown, a JSONL task file)");
  add_train_flags(cmd, *f, "GRPO config (JSON with // comments; see configs/grpo-example.json)",
                  /*with_out=*/false);
  cmd->add_flag("--precise", f->precise,
                "F32 activations in the rollouts (default: BF16): tokens that do not depend on the batch");
  cmd->footer(
      "Writes OUT/metrics.jsonl (per step: reward, accuracy, response length, KL, clip fraction,\n"
      "entropy, generation and training time), OUT/report.html and checkpoints OUT/step-N and\n"
      "OUT/final (OUT/latest points to the newest). Then:\n"
      "  seek eval --model OUT/final --task countdown");
  return {cmd, [f] {
            rl::GrpoRunOptions o = f->options<rl::GrpoRunOptions>();
            o.precise = f->precise;
            rl::run_grpo(f->load<rl::GrpoConfig>(), o);
            return 0;
          }};
}

}  // namespace seek::cli
