// seek train: pretrain a DeepSeek-architecture model (MLA + DeepSeekMoE + MTP) from a config
// file on the CPU, or fine-tune a Hugging Face DeepSeek checkpoint ("init"); checkpoints are
// Hugging Face model directories `seek run` loads.
#include "cli/common.h"
#include "train/trainer.h"

namespace seek::cli {

Command add_train(CLI::App& app) {
  struct Flags : TrainFlags {
    int64_t steps = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("train", "Train a DeepSeek-architecture model from scratch, or fine-tune a checkpoint");
  add_train_flags(cmd, *f, "Training config (JSON with // comments; see configs/)");
  cmd->add_option("--steps", f->steps, "Total optimizer steps (overrides the config)")->check(CLI::PositiveNumber);
  cmd->footer(
      "Writes OUT/tokenizer, OUT/data (token shards), OUT/metrics.jsonl, OUT/report.html and\n"
      "checkpoints OUT/step-N, OUT/final (OUT/latest points to the newest). With \"init\": MODEL_DIR\n"
      "it fine-tunes that checkpoint (BF16 or FP8) and saves in its dtype (\"save_dtype\" overrides).\n"
      "Then:\n"
      "  seek run OUT/final \"Your prompt\"");
  return {cmd, [f] {
            train::TrainConfig c = f->load<train::TrainConfig>();
            if (f->steps > 0) {
              c.steps = f->steps;
              c.schedule.total = f->steps;
            }
            train::run_training(c, f->options<train::RunOptions>());
            return 0;
          }};
}

}  // namespace seek::cli
