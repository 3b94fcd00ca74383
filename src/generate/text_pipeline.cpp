#include "generate/text_pipeline.h"

#include <algorithm>

#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace seek::generate {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Timeout: return "timeout";
    case FinishReason::Shutdown: return "shutdown";
    case FinishReason::Error: return "error";
  }
  return "error";
}

std::vector<int32_t> eos_ids(const model::ModelConfig& cfg, const tokenizer::Tokenizer* tok) {
  std::vector<int64_t> ids(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  if (tok) ids.push_back(tok->eos_id());
  std::vector<int32_t> eos;
  for (int64_t id : ids)
    if (id >= 0 && id < cfg.vocab_size) eos.push_back(int32_t(id));
  std::sort(eos.begin(), eos.end());
  eos.erase(std::unique(eos.begin(), eos.end()), eos.end());
  return eos;
}

TextPipeline::TextPipeline(const tokenizer::Tokenizer& tok, std::vector<std::string> stop,
                           bool split_reasoning, bool starts_in_thinking)
    : decoder_(tok, /*skip_special_tokens=*/true), stop_(std::move(stop)) {
  if (split_reasoning) split_.emplace(starts_in_thinking);
}

void TextPipeline::push(int32_t id, std::vector<TextPiece>& out) { text(decoder_.push(id), out); }

void TextPipeline::finish(std::vector<TextPiece>& out) {
  if (!stop_.stopped()) {
    text(decoder_.flush(), out);
    split(stop_.finish(), out);
  }
  if (split_)
    for (TextPiece& p : split_->finish()) out.push_back(std::move(p));
}

void TextPipeline::text(const std::string& piece, std::vector<TextPiece>& out) {
  if (!piece.empty()) split(stop_.push(piece), out);
}

void TextPipeline::split(std::string text, std::vector<TextPiece>& out) {
  if (text.empty()) return;
  if (!split_) {
    out.push_back(TextPiece{std::move(text), false});
    return;
  }
  for (TextPiece& p : split_->push(text)) out.push_back(std::move(p));
}

}  // namespace seek::generate
