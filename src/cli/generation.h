// What `seek run` and `seek chat` share: the sampling / generation flags, the streaming display
// (thinking dimmed on stderr, answer on stdout), the stats line, and Ctrl-C handling.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/common.h"
#include "generate/engine.h"

namespace seek::cli {

struct GenFlags {
  std::string model_dir;
  // Defaults: DeepSeek's recommendation for R1 (temperature 0.6, top-p 0.95); fine for V3 chat.
  float temperature = 0.6f;
  int top_k = 0;
  float top_p = 0.95f;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int64_t seed = -1;  // < 0: random
  int64_t max_tokens = -1;
  std::vector<std::string> stop;
  std::string system;
  int64_t ctx = 4096;
  bool hide_thinking = false;
  bool ignore_eos = false;
  bool precise = false;
  bool speculative = false;
  int draft_tokens = generate::EngineOptions{}.spec_tokens;
  LoadFlags load;
};

void add_gen_flags(CLI::App* cmd, GenFlags& f);
// The engine for one sequence: its slot's prefix cache carries a chat from turn to turn.
generate::EngineOptions make_engine_options(const GenFlags& f);
// Sampling, -n (every generated token, thinking included), stop strings, reasoning split; the
// seed resolved (random if < 0). The prompt and starts_in_thinking are the caller's.
generate::EngineRequest make_request(const GenFlags& f);

// Ctrl-C: the first press during generation sets cancel_flag(); a second press, or any press
// while not generating (loading, waiting for input), exits at once with code 130.
void install_sigint_handler();
const std::atomic<bool>* cancel_flag();
void set_generating(bool on);  // also clears the cancel flag when turning on

// Streams a generation: reasoning to stderr (dimmed on a TTY, hidden with --hide-thinking),
// answer to stdout as it arrives.
class StreamPrinter {
 public:
  explicit StreamPrinter(bool show_thinking);
  void text(std::string_view piece, bool reasoning);
  void end();  // closes the thinking block; ends the answer line on a TTY

 private:
  bool show_thinking_, dim_;
  bool thinking_open_ = false;
  bool answer_started_ = false;
  bool answer_ends_newline_ = true;
};

// "[prompt: 16 tokens, 312.4 tok/s | generated: 8 tokens, 41.2 tok/s]" on stderr, plus a line
// explaining a context-limit stop.
void print_stats(const generate::EngineResult& r, int64_t context_limit, int64_t model_max);

}  // namespace seek::cli
