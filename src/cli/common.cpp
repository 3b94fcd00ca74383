#include "cli/common.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"
#include "dist/expert_servers.h"
#include "dist/pipeline_link.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

namespace fs = std::filesystem;

bool stdin_is_tty() { return isatty(STDIN_FILENO) == 1; }
bool stdout_is_tty() { return isatty(STDOUT_FILENO) == 1; }
bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

std::string read_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) s.append(buf, n);
  if (std::ferror(stdin)) fail("cannot read standard input");
  return s;
}

void write_stdout(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

void write_stderr(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

void add_load_flags(CLI::App* cmd, LoadFlags& f) {
  cmd->add_flag("--mmap", f.mmap,
                "Map the weight files instead of reading them into memory (starts faster, shares "
                "the page cache; the first tokens are slower while pages fault in)");
  cmd->add_option("-t,--threads", f.threads, "Worker threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--expert-ranks", f.expert_ranks,
                  "Under mpirun -np N: split each pipeline stage's routed experts across this many "
                  "ranks (N / this many stages; default 1: N stages)")
      ->check(CLI::PositiveNumber);
}

void add_train_flags(CLI::App* cmd, TrainFlags& f, const std::string& config_help, bool with_out) {
  cmd->add_option("-c,--config", f.config, config_help)->required();
  cmd->add_flag("--resume", f.resume,
                "Continue the run in the config's out directory from its latest checkpoint");
  if (with_out) cmd->add_option("--out", f.out, "Run directory (overrides the config's \"out\")");
  cmd->add_option("--stop-after", f.stop_after,
                  "Stop and checkpoint after this many steps (resume later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", f.threads, "Threads (default: the config's, else all cores)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("-q,--quiet", f.quiet, "No progress output");
}

void apply_threads(const LoadFlags& f) {
  if (f.threads > 0) omp_set_num_threads(f.threads);
}

void check_model_dir(const std::string& dir) {
  std::error_code ec;
  if (is_gguf_file(dir)) return;  // a llama.cpp deepseek2 file
  if (!fs::exists(dir, ec)) fail("model directory {} does not exist", dir);
  if (!fs::is_directory(dir, ec)) fail("{} is not a directory", dir);
  if (!fs::exists(fs::path(dir) / "config.json", ec))
    fail("{} has no config.json (expected a Hugging Face model directory or a .gguf file)", dir);
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)) {}

ProgressBar::~ProgressBar() {
  if (drawn_) write_stderr("\r\x1b[K");
}

void ProgressBar::update(uint64_t done, uint64_t total) {
  if (total == 0) return;
  const int permille = int(double(std::min(done, total)) / double(total) * 1000.0);
  if (permille == last_) return;
  last_ = permille;
  constexpr int kWidth = 30;
  const int fill = permille * kWidth / 1000;
  std::string bar(size_t(fill), '#');
  bar.append(size_t(kWidth - fill), '.');
  write_stderr(fmt::format("\r{} [{}] {:3d}%  {} / {}\x1b[K", label_, bar, permille / 10,
                           human_bytes(double(done)), human_bytes(double(total))));
  drawn_ = true;
}

std::unique_ptr<model::Model> load_model(const std::string& dir, const LoadFlags& flags) {
  check_model_dir(dir);
  apply_threads(flags);
  model::LoadOptions opts;
  opts.mode = flags.mmap ? LoadMode::Mmap : LoadMode::Read;
  std::unique_ptr<ProgressBar> bar;
  if (stderr_is_tty()) {
    opts.progress = [&bar](uint64_t done, uint64_t total) {
      constexpr uint64_t kShowAbove = 256ull << 20;
      if (total < kShowAbove) return;
      if (!bar) bar = std::make_unique<ProgressBar>("loading");
      bar->update(done, total);
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Under mpirun: the main layers split into pipeline stages, each stage's routed experts across
  // --expert-ranks ranks (rank = stage · E + e), every rank loading only its own tensors. Rank 0
  // runs the command; the other stages follow its forwards, the expert ranks serve their
  // experts, and all end when it does.
  const dist::Comm& world = dist::Comm::world();
  if (world.size() > 1 || flags.expert_ranks > 1) {
    if (is_gguf_file(dir))
      fail("{}: a .gguf file is not split across ranks; give the model directory (safetensors)", dir);
    const model::ModelConfig cfg = model::ModelConfig::load(dir);
    const int E = flags.expert_ranks, N = world.size();
    if (N % E != 0) fail("--expert-ranks {}: {} ranks (mpirun -np) do not split into groups of {}", E, N, E);
    const int P = N / E, stage = world.rank() / E, e = world.rank() % E;
    if (cfg.num_hidden_layers < P)
      fail("{}: {} pipeline stages (ranks) for a model of {} layers", dir, P, cfg.num_hidden_layers);
    if (E > 1 && (cfg.n_routed_experts == 0 || cfg.n_routed_experts % E != 0))
      fail("{}: {} routed experts do not split across {} expert ranks", dir, cfg.n_routed_experts, E);
    opts = dist::stage_load_options(opts, cfg.num_hidden_layers, stage, P);
    if (E > 1) {
      const model::ExpertRange r = model::owned_experts(cfg.n_routed_experts, e, E);
      opts.experts = {r.begin, r.end, e > 0};
    }
    if (world.rank() != 0) opts.progress = {};
    const dist::Comm pipe = world.split(e), group = world.split(stage);  // collective: every rank
    auto m = model::Model::load(dir, opts);
    const auto report = [](const std::string& line) { write_stderr("seek: " + line + "\n"); };
    if (P > 1 && e == 0) {
      auto link = std::make_unique<dist::MpiPipelineLink>(pipe);
      link->on_finish = report;
      m->set_pipeline(std::move(link));
    }
    if (E > 1) {
      auto servers = std::make_unique<dist::MpiExpertServers>(group, cfg.hidden_size);
      servers->on_finish = report;
      m->set_experts(std::move(servers));
    }
    bar.reset();
    const std::string experts =
        E == 1 ? "" : fmt::format("; {}routed experts [{}, {})", e > 0 ? "only " : "", opts.experts.begin, opts.experts.end);
    write_stderr(fmt::format("seek: rank {} of {}: layers [{}, {}) of {}, {} tensors, {} bytes of weights{}\n",
                             world.rank(), N, m->first_layer(), m->last_layer(), cfg.num_hidden_layers,
                             m->weights_store().tensors().size(), m->weights_store().total_bytes(), experts));
    if (e > 0) model::serve_experts(*m);
    else if (stage > 0) model::follow_stage(*m);
    if (world.rank() != 0) {
      m.reset();
      std::exit(0);
    }
    return m;
  }
  auto m = model::Model::load(dir, opts);
  if (bar) {  // a large model: say what loading cost
    bar.reset();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double bytes = double(m->weights_store().total_bytes());
    write_stderr(fmt::format("seek: loaded {} of weights in {:.1f} s ({}/s)\n", human_bytes(bytes),
                             s, human_bytes(bytes / std::max(s, 1e-9))));
  }
  return m;
}

std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const std::string& dir) {
  std::error_code ec;
  if (is_gguf_file(dir))  // tokenizer.ggml.* metadata
    return std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(dir));
  if (!fs::is_directory(dir, ec)) fail("model directory {} does not exist", dir);
  if (!fs::exists(fs::path(dir) / "tokenizer.json", ec))
    fail("{} has no tokenizer.json: copy tokenizer.json and tokenizer_config.json from the "
         "model's Hugging Face repository into it (or work with token ids: seek logits)",
         dir);
  return std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(dir));
}

// n over the largest of 1e12, 1e9, 1e6, 1e3 it reaches, with that power's name; smaller n whole.
static std::string scaled(double n, const std::array<const char*, 4>& names, const char* ones) {
  constexpr double kPowers[] = {1e12, 1e9, 1e6, 1e3};
  for (size_t i = 0; i < names.size(); ++i)
    if (n >= kPowers[i]) return fmt::format("{:.2f} {}", n / kPowers[i], names[i]);
  return fmt::format("{:.0f}{}", n, ones);
}

std::string human_bytes(double b) { return scaled(b, {"TB", "GB", "MB", "kB"}, " B"); }

std::string human_count(double n) { return scaled(n, {"T", "B", "M", "K"}, ""); }

}  // namespace seek::cli
