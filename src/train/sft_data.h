// SFT data: JSONL chat records → the model's own chat template → token ids with a loss mask →
// packed micro-batches in which every sample is its own sequence (attention never crosses a
// sample; positions restart), the mask as the targets' weights.
//
// A record is one line: {"messages": [{"role": "system" | "user" | "assistant",
//   "content": str, "reasoning_content": str (assistant only, optional)}, ...]} (other top-level
// keys, such as an id, are ignored). An assistant turn is trained as DeepSeek-R1 answers:
//   "<think>\n" + reasoning_content + "\n</think>\n\n" + content   (just content without reasoning)
// followed by whatever the template ends the turn with. The mask is 1 exactly on the tokens of
// that text and on the end-of-sentence token right after it (so the model learns to stop); the
// template's role markers, system and user text get 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/transformer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace seek::train {

// A conversation rendered for training: the template's text with the trained assistant texts in
// place, and their byte ranges in it.
struct RenderedChat {
  std::string text;
  tokenizer::TextSpans assistant;
};

// Checks a record's shape and returns its messages; throws seek::Error saying what is wrong
// ("message 2: \"role\" must be ..."), without a location (the caller adds file:line).
nlohmann::json check_record(const nlohmann::json& record);

// Renders checked messages. The template sees each assistant content as a marker no text holds,
// so a template that rewrites past answers (R1's drops their thinking) still yields the trained
// text verbatim; a template that does not render a content exactly once is an error.
RenderedChat render_for_training(const tokenizer::ChatTemplate& tmpl, const nlohmann::json& messages);

struct SftSample {
  std::vector<int32_t> tokens;  // the rendered conversation, encoded as the tokenizer does it
  std::vector<uint8_t> mask;    // [tokens.size()]: 1 on assistant tokens
  int64_t targets() const { return int64_t(tokens.size()) - 1; }
  int64_t trained() const;      // Σ mask over the targets (tokens 1..)
};

// tok.encode(chat.text) with each token marked when its first byte lies in an assistant span,
// plus the EOS token that immediately follows a span.
SftSample tokenize_chat(const RenderedChat& chat, const tokenizer::Tokenizer& tok);

struct SftLimits {
  int64_t max_targets = 0;        // a sample longer than this is bad (the micro-batch budget)
  std::string max_reason;         // what the limit is, for the error
  int64_t min_targets = 1;        // MTP modules need D + 2
  int64_t vocab_size = 0;         // every id must be below it
};

struct SftData {
  std::vector<SftSample> samples;
  int64_t skipped = 0;            // bad records skipped ("skip_bad")
  std::string first_skipped;      // the first one's error, to show the user
};

// Reads JSONL files (blank lines ignored). A bad record throws "FILE:LINE: reason", or with
// skip_bad is counted and left out. No usable record at all is an error either way.
SftData load_sft(const std::vector<std::string>& files, const tokenizer::ChatTemplate& tmpl,
                 const tokenizer::Tokenizer& tok, const SftLimits& limits, bool skip_bad);

// Packs samples into micro-batches of at most `budget` targets, one sequence per sample,
// weights = the mask shifted onto the targets. Each epoch visits every sample once, in an order
// shuffled by (seed, epoch) (or file order with shuffle = false), filled greedily: a pack takes
// the next samples while they fit and never spans two epochs. DataState {epoch, index of the
// next sample in that epoch's order} resumes it exactly.
class SftLoader : public BatchSource {
 public:
  SftLoader(const std::vector<SftSample>& samples, int64_t budget, uint64_t seed, bool shuffle = true);
  model::TokenBatch next() override;
  DataState state() const override { return st_; }
  void set_state(DataState s) override;
  // Micro-batches in epoch e (the order decides how samples share packs).
  int64_t packs_in_epoch(uint64_t epoch) const;

 private:
  std::vector<int64_t> order(uint64_t epoch) const;
  const std::vector<SftSample>& samples_;
  int64_t budget_;
  uint64_t seed_;
  bool shuffle_;
  DataState st_;
  std::vector<int64_t> order_;  // of st_.epoch
};

model::TokenBatch pack(const std::vector<const SftSample*>& samples);

}  // namespace seek::train
