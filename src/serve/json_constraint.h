// response_format {"type": "json_object"}: decoding constrained so the answer is one valid JSON
// object. A byte-level pushdown recognizer follows the output; before each token the logits of
// every token whose bytes the recognizer would reject are set to −inf, so whatever the sampler
// picks keeps the text a prefix of valid JSON, and generation ends ("stop") the moment the
// object closes. Only the best `kCandidates` valid tokens by logit stay open: checking the
// whole 129k vocabulary at every step would cost more than the forward pass of a small model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "generate/engine.h"
#include "tokenizer/fwd.h"

namespace seek::serve {

// Accepts a byte stream iff it is a prefix of one JSON object (RFC 8259 grammar; string bytes
// >= 0x80 are passed through, the detokenizer repairs invalid UTF-8). Cheap to copy.
class JsonRecognizer {
 public:
  bool feed(char c);  // false: c cannot continue valid JSON (the state is then unspecified)
  bool feed(std::string_view s);
  bool complete() const { return mode_ == Mode::Done; }

  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxWhitespace = 4;  // in a row outside strings: no endless blank lines

 private:
  enum class Mode : uint8_t {
    Start,        // before the top-level object
    Value,        // a value must start
    ArrFirst,     // after '[': a value or ']'
    KeyFirst,     // after '{': a key or '}'
    Key,          // after ',' in an object: a key
    Colon,        // after a key
    AfterValue,   // ',' or the closing bracket
    String,       // inside a string (key or value)
    Escape,       // after a backslash
    Unicode,      // \uXXXX digits
    Number,
    Literal,      // true / false / null
    Done,
  };
  enum class Num : uint8_t { Minus, Zero, Int, Dot, Frac, E, ESign, Exp };
  bool end_value();
  bool number_char(char c);

  Mode mode_ = Mode::Start;
  Num num_ = Num::Int;
  bool string_is_key_ = false;
  uint8_t hex_left_ = 0;
  uint8_t depth_ = 0;
  uint8_t spaces_ = 0;
  const char* literal_ = nullptr;  // the rest of "true" / "false" / "null"
  char stack_[kMaxDepth] = {};
};

// The bytes of every token, with added tokens (chat markers, tool-call markers) barred: they
// are text the detokenizer prints, never JSON content.
struct TokenBytes {
  std::vector<std::string> bytes;
  std::vector<uint8_t> allowed;
  static std::shared_ptr<const TokenBytes> build(const tokenizer::Tokenizer& tok, int64_t vocab);
};

class JsonObjectLogits final : public generate::LogitsProcessor {
 public:
  JsonObjectLogits(std::shared_ptr<const TokenBytes> table, std::vector<int32_t> eos)
      : table_(std::move(table)), eos_(std::move(eos)) {}
  void process(std::span<float> logits, int64_t n) override;
  void accept(int32_t id) override;
  bool done() const override { return state_.complete(); }
  bool constrains_reasoning() const override { return false; }

  static constexpr int kCandidates = 16;

 private:
  std::shared_ptr<const TokenBytes> table_;
  std::vector<int32_t> eos_;
  JsonRecognizer state_;
  std::vector<std::pair<float, int32_t>> order_;  // scratch
};

}  // namespace seek::serve
