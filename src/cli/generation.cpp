#include "cli/generation.h"

#include <signal.h>
#include <unistd.h>

#include <limits>
#include <random>

#include "core/error.h"

namespace seek::cli {

void add_gen_flags(CLI::App* cmd, GenFlags& f) {
  cmd->add_option("MODEL_DIR", f.model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("-n,--max-tokens", f.max_tokens,
                  "Stop after this many generated tokens (default: until EOS or the context is full)");
  cmd->add_option("--temperature,--temp", f.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", f.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", f.min_p, "Drop tokens below min-p times the top probability (0 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", f.repeat_penalty,
                  "Repetition penalty over prompt and output tokens (HF style; 1 = off)")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", f.frequency_penalty,
                  "OpenAI frequency penalty over generated tokens")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", f.presence_penalty,
                  "OpenAI presence penalty over generated tokens")
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Random seed (default: random)");
  cmd->add_option("--stop", f.stop, "Stop string (repeatable); it is not printed")->allow_extra_args(false);
  cmd->add_option("--system", f.system, "System prompt");
  cmd->add_option("-c,--ctx", f.ctx,
                  "Context limit in tokens (prompt + output), capped at the model's "
                  "max_position_embeddings; 0 = the model's maximum")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--ignore-eos", f.ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--hide-thinking", f.hide_thinking, "Do not show the reasoning (<think>) text");
  cmd->add_flag("--precise", f.precise,
                "F32 activations (default: BF16, which bf16 dot products run faster)");
  cmd->add_flag("--speculative", f.speculative,
                "Speculative decoding: the model's MTP module drafts tokens that each step verifies "
                "(same output; faster when drafts are accepted)");
  cmd->add_option("--draft-tokens", f.draft_tokens,
                  "With --speculative: drafts per step at most (chained through the MTP module; "
                  "each sequence drafts as many as pay at its acceptance rate)")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  add_load_flags(cmd, f.load);
}

generate::EngineOptions make_engine_options(const GenFlags& f) {
  generate::EngineOptions o;
  o.max_seqs = 1;
  o.cache_slots = 0;
  o.context = f.ctx;
  // No budget: the KV cache commits memory only as positions are written, so a long --ctx
  // costs what the conversation uses.
  o.kv_budget_bytes = std::numeric_limits<int64_t>::max();
  o.precise = f.precise;
  o.speculative = f.speculative;
  o.spec_tokens = f.draft_tokens;
  return o;
}

generate::EngineRequest make_request(const GenFlags& f) {
  generate::EngineRequest p;
  p.sampling.temperature = f.temperature;
  p.sampling.top_k = f.top_k;
  p.sampling.top_p = f.top_p;
  p.sampling.min_p = f.min_p;
  p.sampling.repetition_penalty = f.repeat_penalty;
  p.sampling.frequency_penalty = f.frequency_penalty;
  p.sampling.presence_penalty = f.presence_penalty;
  p.sampling.seed = f.seed >= 0 ? uint64_t(f.seed) : (uint64_t(std::random_device{}()) << 32) ^
                                                         uint64_t(std::random_device{}());
  p.sampling.validate();
  p.max_total_tokens = f.max_tokens;
  p.stop = f.stop;
  p.reasoning = true;  // thinking text goes to stderr; -n still counts every token
  p.ignore_eos = f.ignore_eos;
  return p;
}

// ---- Ctrl-C ----

namespace {
std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};
std::atomic<bool> g_dim_open{false};

extern "C" void on_sigint(int) {
  if (g_generating.load() && !g_cancel.load()) {
    g_cancel.store(true);
    return;
  }
  // Only async-signal-safe calls from here on.
  if (g_dim_open.load()) (void)!write(STDERR_FILENO, "\x1b[0m", 4);
  (void)!write(STDERR_FILENO, "\n", 1);
  _exit(130);
}
}  // namespace

void install_sigint_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
}

const std::atomic<bool>* cancel_flag() { return &g_cancel; }

void set_generating(bool on) {
  if (on) g_cancel.store(false);
  g_generating.store(on);
}

// ---- display ----

StreamPrinter::StreamPrinter(bool show_thinking)
    : show_thinking_(show_thinking), dim_(stderr_is_tty()) {}

void StreamPrinter::text(std::string_view piece, bool reasoning) {
  if (piece.empty()) return;
  if (reasoning) {
    if (!show_thinking_) return;
    if (!thinking_open_) {
      thinking_open_ = true;
      if (dim_) {
        g_dim_open.store(true);
        write_stderr("\x1b[2m");
      }
    }
    write_stderr(piece);
    return;
  }
  if (thinking_open_) {  // the answer begins: close the reasoning block
    thinking_open_ = false;
    write_stderr(dim_ ? "\x1b[0m\n\n" : "\n\n");
    g_dim_open.store(false);
  }
  answer_started_ = true;
  answer_ends_newline_ = piece.back() == '\n';
  write_stdout(piece);
}

void StreamPrinter::end() {
  if (thinking_open_) {
    thinking_open_ = false;
    write_stderr(dim_ ? "\x1b[0m\n" : "\n");
    g_dim_open.store(false);
  }
  // Piped output stays byte-exact; on a terminal the prompt should not follow the answer.
  if (answer_started_ && !answer_ends_newline_ && stdout_is_tty()) write_stdout("\n");
}

void print_stats(const generate::EngineResult& r, int64_t context_limit, int64_t model_max) {
  const int64_t prefilled = r.prompt_tokens - r.cached_tokens;
  std::string prompt = fmt::format("prompt: {} tokens", r.prompt_tokens);
  if (r.cached_tokens > 0) prompt += fmt::format(" ({} cached)", r.cached_tokens);
  if (prefilled > 0 && r.prefill_seconds > 0)
    prompt += fmt::format(", {:.1f} tok/s", double(prefilled) / r.prefill_seconds);
  std::string gen = fmt::format("generated: {} tokens", r.completion_tokens);
  // Tokens after the first (which the prompt's forward gives) over the decoding time.
  if (r.decode_steps > 0 && r.decode_seconds > 0)
    gen += fmt::format(", {:.1f} tok/s", double(r.completion_tokens - 1) / r.decode_seconds);
  if (r.drafted_tokens > 0)
    gen += fmt::format(", MTP drafts {}/{} accepted ({:.0f}%)", r.accepted_tokens, r.drafted_tokens,
                       100.0 * double(r.accepted_tokens) / double(r.drafted_tokens));
  std::string line = fmt::format("[{} | {}]\n", prompt, gen);
  if (r.context_full) {
    line += fmt::format("seek: the context limit of {} tokens was reached", context_limit);
    line += context_limit < model_max
                ? fmt::format(" (raise it with --ctx, up to {})\n", model_max)
                : std::string(" (the model's maximum)\n");
  } else if (r.finish == generate::FinishReason::Cancelled) {
    line += "seek: interrupted\n";
  }
  write_stderr(line);
}

}  // namespace seek::cli
