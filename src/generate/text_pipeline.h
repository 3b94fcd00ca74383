// What a generated token means to the caller, in one place: whether it ends the sequence (the
// EOS list), the text it completes (StreamDecoder → StopMatcher → ReasoningSplitter), and why a
// sequence finished. The engine runs one TextPipeline per sequence; nothing else decodes output.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "generate/reasoning.h"
#include "generate/stop.h"
#include "tokenizer/fwd.h"
#include "tokenizer/stream_decoder.h"

namespace seek::model {
struct ModelConfig;
}
namespace seek::generate {

enum class FinishReason {
  Stop,       // EOS, a stop string, or the logits processor's done()
  Length,     // max_tokens (answer), max_total_tokens, or the context is full
  Cancelled,  // the caller cancelled (client went away, Ctrl-C)
  Timeout,    // the deadline passed (queued or running)
  Shutdown,   // the engine stopped
  Error,      // the forward pass threw; `error` says why
};
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", …

// The ids that end generation: the config's eos_token_id(s) and the tokenizer's EOS (`tok` may
// be null), sorted, without duplicates and without ids outside the model's vocabulary (those can
// never be sampled).
std::vector<int32_t> eos_ids(const model::ModelConfig& cfg, const tokenizer::Tokenizer* tok);

// ids → complete UTF-8 pieces → text before the first stop string → thinking / answer pieces.
// Special tokens are skipped in the text. Without `split_reasoning` every piece is answer text.
class TextPipeline {
 public:
  TextPipeline(const tokenizer::Tokenizer& tok, std::vector<std::string> stop, bool split_reasoning,
               bool starts_in_thinking);

  // Appends to `out` the text that `id` completes and that can be emitted now (consecutive
  // pieces alternate in kind, none is empty). Nothing once a stop string fired.
  void push(int32_t id, std::vector<TextPiece>& out);
  // End of generation: appends what is still held back (a possible stop-string prefix, an
  // incomplete character, trailing reasoning); after a stop string only the reasoning's end.
  void finish(std::vector<TextPiece>& out);

  bool stopped() const { return stop_.stopped(); }
  const std::string& stop_string() const { return stop_.matched(); }
  // The splitter is inside <think> … </think> now (always false without `split_reasoning`).
  bool in_reasoning() const { return split_ && split_->in_reasoning(); }

 private:
  void text(const std::string& piece, std::vector<TextPiece>& out);
  void split(std::string text, std::vector<TextPiece>& out);

  tokenizer::StreamDecoder decoder_;
  StopMatcher stop_;
  std::optional<ReasoningSplitter> split_;
};

}  // namespace seek::generate
