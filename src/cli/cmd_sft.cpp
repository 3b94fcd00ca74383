// seek sft: supervised fine-tuning of a checkpoint on JSONL chat records, with the loss on the
// assistant's tokens only; the optimizer, checkpoints, resume, metrics and report of `seek train`.
#include "cli/common.h"
#include "train/sft.h"

namespace seek::cli {

Command add_sft(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand("sft", "Fine-tune a checkpoint on chat records (loss on the assistant's turns)");
  add_train_flags(cmd, *f, "SFT config (JSON with // comments; see configs/sft-example.json)");
  cmd->footer(
      "Records, one per line: {\"messages\": [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": ...,\n"
      "\"reasoning_content\": ... (assistant, optional: trained as <think>...</think>)}]}, rendered with\n"
      "the init model's chat template. Writes OUT/metrics.jsonl, OUT/report.html and checkpoints\n"
      "OUT/step-N, OUT/final (with \"patience\": the best-validation checkpoint). Then:\n"
      "  seek run OUT/final \"Your prompt\"");
  return {cmd, [f] {
            train::run_sft(f->load<train::TrainConfig>(train::TrainConfig::Kind::Sft),
                           f->options<train::RunOptions>());
            return 0;
          }};
}

}  // namespace seek::cli
