// Shared pieces of the `seek` commands: terminal detection, stdin, model / tokenizer loading
// with a progress bar, number formatting. Each command group lives in its own cmd_*.cpp and
// registers itself through one add_* function.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "model/transformer.h"
#include "tokenizer/fwd.h"

namespace seek::cli {

// A registered subcommand: `run` is called after parsing when the subcommand was given and
// returns the process exit code.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_run(CLI::App& app);
Command add_chat(CLI::App& app);
Command add_info(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_template(CLI::App& app);
Command add_logits(CLI::App& app);
Command add_perplexity(CLI::App& app);  // cmd_perplexity.cpp
Command add_simulate(CLI::App& app);    // cmd_simulate.cpp
Command add_make_model(CLI::App& app);
Command add_export(CLI::App& app);
Command add_quantize(CLI::App& app);
// Written by the owners of those modules:
Command add_serve(CLI::App& app);  // cmd_serve.cpp
Command add_train(CLI::App& app);  // cmd_train.cpp
Command add_eval(CLI::App& app);    // cmd_eval.cpp
Command add_sample(CLI::App& app);  // cmd_sample.cpp
Command add_sft(CLI::App& app);     // cmd_sft.cpp
Command add_grpo(CLI::App& app);    // cmd_grpo.cpp
Command add_rm(CLI::App& app);      // cmd_rm.cpp
Command add_make_data(CLI::App& app);  // cmd_make_data.cpp

// ---- terminal and streams ----
bool stdin_is_tty();
bool stdout_is_tty();
bool stderr_is_tty();
std::string read_stdin();            // all of it, binary-safe
void write_stdout(std::string_view s);  // unbuffered: written and flushed at once
void write_stderr(std::string_view s);

// ---- loading ----
struct LoadFlags {
  bool mmap = false;
  int threads = 0;  // 0: OpenMP default (all cores)
  int expert_ranks = 1;  // under mpirun: the ranks each stage's routed experts are split across
};
void add_load_flags(CLI::App* cmd, LoadFlags& flags);
void apply_threads(const LoadFlags& flags);

// Throws a clear seek::Error when `dir` is neither a GGUF file nor a directory with config.json.
void check_model_dir(const std::string& dir);
// Loads weights, drawing a progress bar on stderr (TTY only) for models above ~256 MB.
std::unique_ptr<model::Model> load_model(const std::string& dir, const LoadFlags& flags);
// Loads MODEL_DIR/tokenizer.json (+ tokenizer_config.json); a clear error when absent.
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const std::string& dir);

// "\rloading [#######.............]  35%  1.23 / 3.52 GB" on stderr, redrawn only when the
// per-mille changes; erased when destroyed. Callers decide whether stderr is a TTY.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void update(uint64_t done, uint64_t total);

 private:
  std::string label_;
  int last_ = -1;
  bool drawn_ = false;
};

// ---- the training commands (train, sft, rm, grpo) ----
struct TrainFlags {
  std::string config, out;
  bool resume = false, quiet = false;
  int64_t stop_after = -1;
  int threads = 0;

  // The --config file, with --out and --threads over its "out" and "threads".
  template <typename Config, typename... Args>
  Config load(Args... args) const {
    Config c = Config::load(config, args...);
    if (!out.empty()) c.out = out;
    if (threads > 0) c.threads = threads;
    return c;
  }
  // The trainer's run options (train::RunOptions, rl::GrpoRunOptions) from the flags.
  template <typename Options>
  Options options() const {
    Options o;
    o.resume = resume;
    o.stop_after = stop_after;
    o.progress = !quiet;
    return o;
  }
};
// -c/--config (required, described by `config_help`), --resume, --out (when `with_out`),
// --stop-after, -t/--threads and -q/--quiet.
void add_train_flags(CLI::App* cmd, TrainFlags& f, const std::string& config_help, bool with_out = true);

// ---- formatting ----
std::string human_bytes(double bytes);  // "1.23 GB" (decimal units, like download sizes)
std::string human_count(double n);      // "671.03 B", "37.5 M", "960"

}  // namespace seek::cli
