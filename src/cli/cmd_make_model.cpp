// seek make-model: a random-weight checkpoint at a named geometry (see tools/make_model.h), for
// benchmarks and end-to-end tests without downloading the real weights.
#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"
#include "tools/make_model.h"

namespace seek::cli {

Command add_make_model(CLI::App& app) {
  struct Opts {
    std::string out, preset, format = "bf16", tokenizer;
    int64_t layers = -1, vocab = -1, mtp = -1;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  std::string names;
  for (const auto& n : tools::preset_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("make-model", "Write a random-weight model in the Hugging Face layout");
  cmd->add_option("OUT_DIR", o->out, "Directory to create")->required();
  cmd->add_option("--preset", o->preset, "Geometry: " + names)->required();
  cmd->add_option("--layers", o->layers, "Override num_hidden_layers")->check(CLI::PositiveNumber);
  cmd->add_option("--vocab", o->vocab, "Override vocab_size")->check(CLI::PositiveNumber);
  cmd->add_option("--mtp", o->mtp, "Override num_nextn_predict_layers (MTP modules)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--format", o->format, "Weight format: bf16 or fp8 (the V3 release's block FP8)")
      ->check(CLI::IsMember({"bf16", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Weight seed")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Copy tokenizer.json and tokenizer_config.json from this directory");
  return {cmd, [o]() -> int {
            tools::MakeModelOptions opts;
            opts.config = tools::preset(o->preset);
            model::ModelConfig& c = opts.config;
            if (o->layers > 0) {
              c.num_hidden_layers = o->layers;
              c.first_k_dense_replace = std::min(c.first_k_dense_replace, o->layers);
            }
            if (o->vocab > 0) c.vocab_size = o->vocab;
            if (o->mtp >= 0) c.num_nextn_predict_layers = o->mtp;
            c.validate("make-model --preset " + o->preset);
            opts.format = o->format == "fp8" ? tools::WeightFormat::FP8 : tools::WeightFormat::BF16;
            opts.seed = o->seed;
            opts.tokenizer_dir = o->tokenizer;
            if (!o->tokenizer.empty() && !file_exists(o->tokenizer + "/tokenizer.json"))
              fail("--tokenizer: {} has no tokenizer.json", o->tokenizer);  // before writing GBs
            std::unique_ptr<ProgressBar> bar;
            if (stderr_is_tty()) {
              bar = std::make_unique<ProgressBar>("writing");
              opts.progress = [&bar](uint64_t done, uint64_t total) { bar->update(done, total); };
            }
            tools::make_random_model(opts, o->out);
            bar.reset();
            write_stderr(fmt::format("seek: wrote {} ({} layers, vocab {}, {}) to {}\n", o->preset,
                                     c.num_hidden_layers, c.vocab_size, o->format, o->out));
            return 0;
          }};
}

}  // namespace seek::cli
