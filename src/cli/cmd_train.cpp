// seek train: pretrain a DeepSeek-architecture model (MLA + DeepSeekMoE + MTP) from a config
// file on the CPU, or fine-tune a Hugging Face DeepSeek checkpoint ("init"); checkpoints are
// Hugging Face model directories `seek run` loads.
#include <omp.h>

#include "cli/common.h"
#include "train/trainer.h"

namespace seek::cli {

Command add_train(CLI::App& app) {
  struct Flags {
    std::string config, out;
    bool resume = false, quiet = false;
    int64_t steps = 0, stop_after = -1;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("train", "Train a DeepSeek-architecture model from scratch, or fine-tune a checkpoint");
  cmd->add_option("-c,--config", f->config, "Training config (JSON with // comments; see configs/)")->required();
  cmd->add_flag("--resume", f->resume, "Continue the run in the config's out directory from its latest checkpoint");
  cmd->add_option("--out", f->out, "Run directory (overrides the config's \"out\")");
  cmd->add_option("--steps", f->steps, "Total optimizer steps (overrides the config)")->check(CLI::PositiveNumber);
  cmd->add_option("--stop-after", f->stop_after, "Stop and checkpoint after this many steps (resume later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", f->threads, "Threads (default: all cores)")->check(CLI::PositiveNumber);
  cmd->add_flag("-q,--quiet", f->quiet, "No progress output");
  cmd->footer(
      "Writes OUT/tokenizer, OUT/data (token shards), OUT/metrics.jsonl, OUT/report.html and\n"
      "checkpoints OUT/step-N, OUT/final (OUT/latest points to the newest). With \"init\": MODEL_DIR\n"
      "it fine-tunes that checkpoint (BF16 or FP8) and saves in its dtype (\"save_dtype\" overrides).\n"
      "Then:\n"
      "  seek run OUT/final \"Your prompt\"");
  return {cmd, [f] {
            train::TrainConfig c = train::TrainConfig::load(f->config);
            if (!f->out.empty()) c.out = f->out;
            if (f->steps > 0) {
              c.steps = f->steps;
              c.schedule.total = f->steps;
            }
            if (f->threads > 0) c.threads = f->threads;
            train::RunOptions o;
            o.resume = f->resume;
            o.stop_after = f->stop_after;
            o.progress = !f->quiet;
            train::run_training(c, o);
            return 0;
          }};
}

}  // namespace seek::cli
