// seek grpo: GRPO post-training (DeepSeek-R1's RL) of a Seek model on a verifiable task, with
// rollouts from the engine's batched decoding (rl/grpo_trainer.h).
#include "cli/common.h"
#include "rl/grpo_trainer.h"

namespace seek::cli {

Command add_grpo(CLI::App& app) {
  struct Flags {
    std::string config;
    bool resume = false, quiet = false, precise = false;
    int64_t stop_after = -1;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "grpo", "Post-train a model with GRPO on a task checked by rewards (Countdown, a JSONL task file)");
  cmd->add_option("-c,--config", f->config, "GRPO config (JSON with // comments; see configs/grpo-example.json)")
      ->required();
  cmd->add_flag("--resume", f->resume, "Continue the run in the config's out directory from its latest checkpoint");
  cmd->add_option("--stop-after", f->stop_after, "Stop and checkpoint after this many steps (resume later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", f->threads, "Threads (default: the config's, else all cores)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--precise", f->precise,
                "F32 activations in the rollouts (default: BF16): tokens that do not depend on the batch");
  cmd->add_flag("-q,--quiet", f->quiet, "No progress output");
  cmd->footer(
      "Writes OUT/metrics.jsonl (per step: reward, accuracy, response length, KL, clip fraction,\n"
      "entropy, generation and training time), OUT/report.html and checkpoints OUT/step-N and\n"
      "OUT/final (OUT/latest points to the newest). Then:\n"
      "  seek eval --model OUT/final --task countdown");
  return {cmd, [f] {
            rl::GrpoConfig c = rl::GrpoConfig::load(f->config);
            if (f->threads > 0) c.threads = f->threads;
            rl::GrpoRunOptions o;
            o.resume = f->resume;
            o.stop_after = f->stop_after;
            o.progress = !f->quiet;
            o.precise = f->precise;
            rl::run_grpo(c, o);
            return 0;
          }};
}

}  // namespace seek::cli
