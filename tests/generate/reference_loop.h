// The plainest decode loop, as an independent reference for the engine's scheduling: one slot,
// the whole prompt in one forward call, then one forward per token; no text, no prefix cache,
// no threads. Stops at EOS (the engine's eos_ids()), after max_new_tokens, or when the context
// is full, exactly where the engine stops a lone sequence.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"
#include "generate/sampler.h"
#include "generate/text_pipeline.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace seek::generate {

struct ReferenceParams {
  SamplingParams sampling;
  int64_t max_new_tokens = -1;  // < 0: until EOS or the context is full
  bool ignore_eos = false;
  bool precise = false;  // F32 activations (else BF16, as the engine)
};

struct ReferenceResult {
  std::vector<int32_t> tokens;  // sampled ids, the EOS included when it ended generation
};

class ReferenceLoop {
 public:
  // `tok` (may be null) only adds its EOS id. Context: min(max_position_embeddings, ctx).
  ReferenceLoop(const model::Model& model, const tokenizer::Tokenizer* tok, int64_t ctx = 0)
      : model_(model), eos_(eos_ids(model.config(), tok)) {
    context_ = model.config().max_position_embeddings;
    if (ctx > 0) context_ = std::min(context_, ctx);
  }

  ReferenceResult generate(std::span<const int32_t> prompt, const ReferenceParams& p) const {
    const auto n = int64_t(prompt.size());
    if (n == 0 || n >= context_) fail("reference loop: prompt of {} tokens, context {}", n, context_);
    // The engine's cache: BF16 entries unless precise.
    model::KVCache cache(model_.config(), 1, context_, 0, p.precise ? DType::F32 : DType::BF16);
    model::ForwardOptions fo;
    fo.precision = p.precise ? kernels::Precision::F32 : kernels::Precision::BF16;
    std::vector<float> logits;
    model::forward(model_, cache, {{prompt.begin(), prompt.end()}, {{0, 0, n, false}}}, logits, fo);
    Sampler sampler(p.sampling);
    TokenHistory history;
    if (p.sampling.has_penalties()) history.add_prompt(prompt);
    ReferenceResult r;
    while (p.max_new_tokens < 0 || int64_t(r.tokens.size()) < p.max_new_tokens) {
      const int32_t id = sampler.sample(logits, history);
      r.tokens.push_back(id);
      if (p.sampling.has_penalties()) history.add_generated(id);
      if (!p.ignore_eos && std::binary_search(eos_.begin(), eos_.end(), id)) break;
      const int64_t pos = n + int64_t(r.tokens.size()) - 1;  // where `id` would be written
      if (p.max_new_tokens >= 0 && int64_t(r.tokens.size()) >= p.max_new_tokens) break;
      if (pos + 1 >= context_) break;  // the context is full: prompt + output fill it
      model::forward(model_, cache, {{id}, {{0, pos, 1, false}}}, logits, fo);
    }
    return r;
  }

  int64_t context() const { return context_; }

 private:
  const model::Model& model_;
  std::vector<int32_t> eos_;
  int64_t context_;
};

}  // namespace seek::generate
