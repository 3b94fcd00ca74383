// Splits a reasoning model's streamed output into thinking and answer, the way DeepSeek's API
// fills `reasoning_content` and `content`:
//   "<think>\nLet me see...\n</think>\n\nThe answer is 4."
//     → reasoning "Let me see..."   answer "The answer is 4."
// - `<think>` opens reasoning only at the start of the output (after optional whitespace), and
//   only once; after `</think>` every byte is answer text, tags included. A model talking about
//   "<think>" in its answer is therefore left alone.
// - Tags may arrive split across pushes at any byte; text that may still turn into a tag is held.
// - Starts-in-thinking mode: R1 chat templates end the generation prompt with "<think>\n", so the
//   output begins inside the reasoning and only `</think>` appears.
// - Newlines around the reasoning and at the start of the answer are trimmed (they are formatting
//   between the blocks, not content). Text without tags passes through untouched.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace seek::generate {

struct TextPiece {
  std::string text;
  bool reasoning = false;
  bool operator==(const TextPiece&) const = default;
};

class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool starts_in_thinking = false);

  // Consecutive pieces alternate in kind; none is empty.
  std::vector<TextPiece> push(std::string_view text);
  std::vector<TextPiece> finish();

  bool in_reasoning() const { return state_ == State::Thinking; }

 private:
  enum class State { Start, Thinking, AnswerStart, Answer };
  void run(std::vector<TextPiece>& out);

  State state_;
  std::string buf_;            // held text (a possible tag prefix, trailing newlines)
  bool reasoning_began_ = false;  // a non-newline reasoning byte has been emitted
};

// Prompt helper: true when a rendered prompt leaves the model inside a <think> block
// (R1 templates end with "<think>\n").
bool prompt_opens_thinking(std::string_view prompt);

}  // namespace seek::generate
