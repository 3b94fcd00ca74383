// seek rm: train a Bradley–Terry reward model (a scalar score head on a Seek model) from
// preference pairs; its checkpoints plug into `seek grpo` as {"name": "rm", "model": DIR}.
#include "cli/common.h"
#include "rl/reward_model.h"

namespace seek::cli {

Command add_rm(CLI::App& app) {
  struct Flags {
    std::string config, out;
    bool resume = false, quiet = false;
    int64_t stop_after = -1;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "rm", "Train a reward model (Bradley–Terry score head) on preference pairs");
  cmd->add_option("-c,--config", f->config, "Config (JSON with // comments; see configs/rm-example.json)")
      ->required();
  cmd->add_flag("--resume", f->resume, "Continue the run in the config's out directory from its latest checkpoint");
  cmd->add_option("--out", f->out, "Run directory (overrides the config's \"out\")");
  cmd->add_option("--stop-after", f->stop_after, "Stop and checkpoint after this many steps (resume later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", f->threads, "Threads (default: all cores)")->check(CLI::PositiveNumber);
  cmd->add_flag("-q,--quiet", f->quiet, "No progress output");
  cmd->footer(
      "Pairs are JSONL records {\"prompt\": str | [messages], \"chosen\": str, \"rejected\": str}.\n"
      "Writes OUT/metrics.jsonl (loss, held-out pairwise accuracy), OUT/report.html and checkpoints\n"
      "OUT/step-N, OUT/final: the model plus score.weight [1, hidden]. Then, in a `seek grpo` config:\n"
      "  \"reward\": [{\"name\": \"rm\", \"model\": \"OUT/final\", \"weight\": 1.0}]");
  return {cmd, [f] {
            rl::RmConfig c = rl::RmConfig::load(f->config);
            if (!f->out.empty()) c.out = f->out;
            if (f->threads > 0) c.threads = f->threads;
            train::RunOptions o;
            o.resume = f->resume;
            o.stop_after = f->stop_after;
            o.progress = !f->quiet;
            rl::run_reward_model_training(c, o);
            return 0;
          }};
}

}  // namespace seek::cli
