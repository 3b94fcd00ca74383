// The decode loop for one sequence: prefill the prompt, then sample and feed one token at a time
// until EOS, a stop string, the token budget, the context limit or cancellation.
//
// Text path per token: StreamDecoder (complete UTF-8 only) → StopMatcher (holds possible stop
// prefixes) → ReasoningSplitter (<think> … </think>) → on_text. Without a tokenizer the
// generator still works on raw ids (tests, `seek logits`-style tools); text stays empty.
//
// Multi-turn reuse: the KV cache keeps the tokens of the previous call (prompt + fed output).
// A new prompt re-uses the longest common prefix and prefills only the rest, so a chat turn
// costs only its new tokens.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/sampler.h"
#include "kernels/matmul.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace seek::tokenizer {
class Tokenizer;
}

namespace seek::generate {

struct GenerateParams {
  SamplingParams sampling;
  int64_t max_new_tokens = -1;    // < 0: until EOS, a stop string or the context limit
  std::vector<std::string> stop;  // stop strings (need a tokenizer)
  bool ignore_eos = false;
  bool starts_in_thinking = false;  // the prompt opened a <think> block (R1 templates)
  // Activations are BF16 (bf16 dot products: twice the fp32 rate for compute-bound prefill, and
  // fewer instructions per weight for decode, which FP8 weights need to keep up with memory)
  // unless `precise`: then every product is F32.
  bool precise = false;
  // Prompt tokens per forward call: bounds activation memory on long prompts (attention
  // scores grow with chunk × context). <= 0: the whole prompt in one call.
  int64_t prefill_chunk = 512;
  int top_logprobs = -1;  // >= 0: record logprobs of every sampled token and this many top ones

  kernels::Precision precision() const {
    return precise ? kernels::Precision::F32 : kernels::Precision::BF16;
  }
};

struct GenerateCallbacks {
  std::function<void(std::string_view text, bool reasoning)> on_text;
  std::function<void(int32_t id)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // sampled ids, the EOS included when it ended generation
  std::string text;             // answer text (stop string and reasoning excluded)
  std::string reasoning;        // text inside <think> … </think>
  std::string finish_reason;    // "stop" | "length" | "cancelled"
  std::string stop_string;      // the stop string that ended generation, if one did
  bool context_full = false;    // "length" because the context limit was reached
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens whose KV came from the previous call
  int64_t gen_tokens = 0;
  int64_t decode_steps = 0;     // single-token forwards (gen_tokens - 1 unless cut short)
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  std::vector<SampleLogprobs> logprobs;  // when GenerateParams::top_logprobs >= 0
};

class Generator {
 public:
  // `tok` may be null (raw-id generation). Context limit = min(max_position_embeddings, ctx)
  // (ctx <= 0: the model's maximum). The KV cache is sized to the limit; its memory is only
  // committed as positions are written.
  Generator(const model::Model& model, const tokenizer::Tokenizer* tok, int64_t ctx = 0);
  ~Generator();

  int64_t context_limit() const { return limit_; }
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  void reset();  // forget the cached prefix
  bool is_eos(int32_t id) const;

  // Throws seek::Error for an empty prompt, a prompt of >= context_limit() tokens
  // ("prompt has N tokens, context limit is M"), ids outside the vocabulary, or stop strings
  // without a tokenizer. `cancel` is polled before every forward call.
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateParams& params,
                          const GenerateCallbacks& cb = {},
                          const std::atomic<bool>* cancel = nullptr);

 private:
  void prefill(std::span<const int32_t> prompt, const GenerateParams& params,
               const std::atomic<bool>* cancel, GenerateResult& r);
  void feed(std::span<const int32_t> tokens, int64_t start, kernels::Precision precision);

  const model::Model& model_;
  const tokenizer::Tokenizer* tok_;
  int64_t limit_;
  std::unique_ptr<model::KVCache> cache_;
  std::vector<int32_t> cached_;  // tokens whose KV entries are in the cache (slot 0)
  std::vector<int32_t> eos_;
  std::vector<float> logits_;
};

}  // namespace seek::generate
