// seek sft: supervised fine-tuning of a checkpoint on JSONL chat records, with the loss on the
// assistant's tokens only; the optimizer, checkpoints, resume, metrics and report of `seek train`.
#include "cli/common.h"
#include "train/sft.h"

namespace seek::cli {

Command add_sft(CLI::App& app) {
  struct Flags {
    std::string config, out;
    bool resume = false, quiet = false;
    int64_t stop_after = -1;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("sft", "Fine-tune a checkpoint on chat records (loss on the assistant's turns)");
  cmd->add_option("-c,--config", f->config, "SFT config (JSON with // comments; see configs/sft-example.json)")->required();
  cmd->add_flag("--resume", f->resume, "Continue the run in the config's out directory from its latest checkpoint");
  cmd->add_option("--out", f->out, "Run directory (overrides the config's \"out\")");
  cmd->add_option("--stop-after", f->stop_after, "Stop and checkpoint after this many steps (resume later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", f->threads, "Threads (default: all cores)")->check(CLI::PositiveNumber);
  cmd->add_flag("-q,--quiet", f->quiet, "No progress output");
  cmd->footer(
      "Records, one per line: {\"messages\": [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": ...,\n"
      "\"reasoning_content\": ... (assistant, optional: trained as <think>...</think>)}]}, rendered with\n"
      "the init model's chat template. Writes OUT/metrics.jsonl, OUT/report.html and checkpoints\n"
      "OUT/step-N, OUT/final (with \"patience\": the best-validation checkpoint). Then:\n"
      "  seek run OUT/final \"Your prompt\"");
  return {cmd, [f] {
            train::TrainConfig c = train::TrainConfig::load(f->config, train::TrainConfig::Kind::Sft);
            if (!f->out.empty()) c.out = f->out;
            if (f->threads > 0) c.threads = f->threads;
            train::RunOptions o;
            o.resume = f->resume;
            o.stop_after = f->stop_after;
            o.progress = !f->quiet;
            train::run_sft(c, o);
            return 0;
          }};
}

}  // namespace seek::cli
