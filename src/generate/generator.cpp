#include "generate/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "generate/reasoning.h"
#include "generate/stop.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace seek::generate {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool cancelled(const std::atomic<bool>* cancel) {
  return cancel && cancel->load(std::memory_order_relaxed);
}

// ids → UTF-8 pieces → stop strings → reasoning split → result + callback.
class TextPipeline {
 public:
  TextPipeline(const tokenizer::Tokenizer& tok, const GenerateParams& p, GenerateResult& r,
               const GenerateCallbacks& cb)
      : decoder_(tok, /*skip_special=*/true), stop_(p.stop), split_(p.starts_in_thinking),
        r_(r), cb_(cb) {}

  void push(int32_t id) { text(decoder_.push(id)); }
  bool stopped() const { return stop_.stopped(); }
  const std::string& stop_string() const { return stop_.matched(); }

  void finish() {
    if (!stop_.stopped()) {
      text(decoder_.flush());
      split(split_.push(stop_.finish()));
    }
    split(split_.finish());
  }

 private:
  void text(const std::string& piece) {
    if (!piece.empty()) split(split_.push(stop_.push(piece)));
  }
  void split(const std::vector<TextPiece>& pieces) {
    for (const TextPiece& p : pieces) {
      (p.reasoning ? r_.reasoning : r_.text).append(p.text);
      if (cb_.on_text) cb_.on_text(p.text, p.reasoning);
    }
  }

  tokenizer::StreamDecoder decoder_;
  StopMatcher stop_;
  ReasoningSplitter split_;
  GenerateResult& r_;
  const GenerateCallbacks& cb_;
};

}  // namespace

Generator::Generator(const model::Model& model, const tokenizer::Tokenizer* tok, int64_t ctx)
    : model_(model), tok_(tok) {
  const model::ModelConfig& cfg = model.config();
  limit_ = cfg.max_position_embeddings;
  if (ctx > 0) limit_ = std::min(limit_, ctx);
  if (limit_ < 2) fail("context limit {} is too small", limit_);
  cache_ = std::make_unique<model::KVCache>(cfg, 1, limit_);
  for (int64_t id : cfg.eos_token_ids) eos_.push_back(int32_t(id));
  if (tok_) eos_.push_back(tok_->eos_id());
  std::sort(eos_.begin(), eos_.end());
  eos_.erase(std::unique(eos_.begin(), eos_.end()), eos_.end());
}

Generator::~Generator() = default;

void Generator::reset() {
  cache_->clear(0);
  cached_.clear();
}

bool Generator::is_eos(int32_t id) const { return std::binary_search(eos_.begin(), eos_.end(), id); }

void Generator::feed(std::span<const int32_t> tokens, int64_t start, kernels::Precision precision) {
  model::Batch batch;
  batch.tokens.assign(tokens.begin(), tokens.end());
  batch.seqs.push_back({.slot = 0, .start_pos = start, .n_tokens = int64_t(tokens.size()),
                        .all_logits = false});
  model::ForwardOptions opts;
  opts.precision = precision;
  model::forward(model_, *cache_, batch, logits_, opts);
  cached_.insert(cached_.end(), tokens.begin(), tokens.end());
}

void Generator::prefill(std::span<const int32_t> prompt, const GenerateParams& params,
                        const std::atomic<bool>* cancel, GenerateResult& r) {
  // Keep the longest common prefix of the cache, but always recompute at least the last prompt
  // token: its logits are the ones the first new token is sampled from.
  size_t keep = 0;
  const size_t max_keep = std::min(cached_.size(), prompt.size() - 1);
  while (keep < max_keep && cached_[keep] == prompt[keep]) ++keep;
  cached_.resize(keep);
  cache_->set_length(0, int64_t(keep));
  r.cached_tokens = int64_t(keep);

  const auto t0 = Clock::now();
  const size_t chunk = params.prefill_chunk > 0 ? size_t(params.prefill_chunk) : prompt.size();
  for (size_t pos = keep; pos < prompt.size(); pos += chunk) {
    if (cancelled(cancel)) break;
    const size_t n = std::min(chunk, prompt.size() - pos);
    feed(prompt.subspan(pos, n), int64_t(pos), params.precision());
  }
  r.prefill_seconds = seconds_since(t0);
}

GenerateResult Generator::generate(std::span<const int32_t> prompt, const GenerateParams& params,
                                   const GenerateCallbacks& cb, const std::atomic<bool>* cancel) {
  const int64_t vocab = model_.config().vocab_size;
  const auto n_prompt = int64_t(prompt.size());
  if (n_prompt == 0) fail("empty prompt: nothing to generate from");
  if (n_prompt >= limit_)
    fail("prompt has {} tokens, context limit is {} (prompt and output must fit together)",
         n_prompt, limit_);
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= vocab)
      fail("prompt token {} at position {} is outside the model's vocabulary (vocab_size {})",
           prompt[i], i, vocab);
  if (!params.stop.empty() && !tok_) fail("stop strings need a tokenizer");

  GenerateResult r;
  r.prompt_tokens = n_prompt;
  Sampler sampler(params.sampling);  // validates the sampling parameters
  TokenHistory history;
  if (params.sampling.has_penalties()) history.add_prompt(prompt);
  std::optional<TextPipeline> text;
  if (tok_) text.emplace(*tok_, params, r, cb);

  prefill(prompt, params, cancel, r);
  if (int64_t(cached_.size()) < n_prompt) {  // cancelled during prefill
    r.finish_reason = "cancelled";
    if (text) text->finish();
    return r;
  }

  if (params.max_new_tokens == 0) {
    r.finish_reason = "length";
    if (text) text->finish();
    return r;
  }
  const auto t0 = Clock::now();
  for (;;) {
    SampleLogprobs lp;
    const bool want_lp = params.top_logprobs >= 0;
    const int32_t id = sampler.sample(logits_, history, want_lp ? &lp : nullptr,
                                      std::max(params.top_logprobs, 0));
    if (want_lp) r.logprobs.push_back(std::move(lp));
    r.tokens.push_back(id);
    ++r.gen_tokens;
    if (params.sampling.has_penalties()) history.add_generated(id);
    if (cb.on_token) cb.on_token(id);

    if (!params.ignore_eos && is_eos(id)) {
      r.finish_reason = "stop";
      break;
    }
    if (text) {
      text->push(id);
      if (text->stopped()) {
        r.finish_reason = "stop";
        r.stop_string = text->stop_string();
        break;
      }
    }
    if (params.max_new_tokens >= 0 && r.gen_tokens >= params.max_new_tokens) {
      r.finish_reason = "length";
      break;
    }
    // The sampled token goes to position n_prompt + gen - 1; the cache holds limit_ positions.
    if (n_prompt + r.gen_tokens >= limit_) {
      r.finish_reason = "length";
      r.context_full = true;
      break;
    }
    if (cancelled(cancel)) {
      r.finish_reason = "cancelled";
      break;
    }
    feed(std::span<const int32_t>(&id, 1), n_prompt + r.gen_tokens - 1, params.precision());
    ++r.decode_steps;
  }
  r.decode_seconds = seconds_since(t0);
  if (text) text->finish();
  return r;
}

}  // namespace seek::generate
