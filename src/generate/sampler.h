// Turning one position's logits into the next token: penalties, temperature, top-k / top-p /
// min-p truncation, and a seeded draw. The same seed on the same logits always gives the same
// token (the RNG and the uniform draw are specified here, not left to the standard library).
//
// Order of operations (as in Hugging Face generate and vLLM):
//   1. penalties on the raw logits l:
//      repetition (HF/CTRL, over every distinct token of prompt + output):
//          l = l > 0 ? l / r : l · r
//      frequency / presence (OpenAI, over generated tokens only, c = count in the output):
//          l -= f · c + p · [c > 0]
//   2. logprobs, if asked for: log_softmax of the penalised logits — the model's distribution
//      after penalties, before temperature and truncation (vLLM's "processed_logprobs"). They
//      therefore do not depend on temperature / top-k / top-p, as in OpenAI's API.
//   3. temperature 0 (< 1e-5) or top_k 1 → greedy: argmax, lowest id on ties.
//   4. otherwise s = l / T, keep the top_k largest (k = 0: all), then the smallest prefix by
//      descending probability whose mass (renormalised over the top-k set) reaches top_p, then
//      drop tokens whose probability is below min_p · p_max; draw from what is left.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seek::generate {

struct SamplingParams {
  float temperature = 1.0f;  // 0 (below 1e-5, like vLLM): greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;

  // Below T = 1e-5 the tempered distribution is one-hot in float (and l / T may overflow);
  // vLLM draws the same line.
  bool greedy() const { return temperature < 1e-5f || top_k == 1; }
  bool has_penalties() const {
    return repetition_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f;
  }
  // Throws seek::Error naming the parameter when a value is out of range (temperature < 0,
  // top_p outside (0, 1], min_p outside [0, 1], repetition_penalty <= 0, top_k < 0).
  void validate() const;
};

// The tokens the penalties look at: every token of the prompt and the output (repetition
// penalty) and how often each appeared in the output (frequency / presence penalties).
class TokenHistory {
 public:
  void clear();
  void add_prompt(std::span<const int32_t> ids);
  void add_generated(int32_t id);

  const std::vector<int32_t>& seen() const { return seen_; }  // distinct, in first-seen order
  const std::unordered_map<int32_t, int32_t>& generated_counts() const { return counts_; }

 private:
  void mark_seen(int32_t id);
  std::vector<int32_t> seen_;
  std::unordered_map<int32_t, int32_t> seen_index_;
  std::unordered_map<int32_t, int32_t> counts_;
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

// Logprobs of one sampled position (see step 2 above).
struct SampleLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // n most likely tokens, descending; ties by lowest id
};

// Applies step 1 in place.
void apply_penalties(std::span<float> logits, const TokenHistory& history,
                     const SamplingParams& params);

// Greedy choice: argmax, lowest id among equal maxima. NaN logits are never chosen.
int32_t argmax(std::span<const float> logits);

// A distribution sample() would draw from: the tokens left after truncation and their
// probabilities (summing to 1). Greedy: the argmax alone.
struct TokenDist {
  std::vector<int32_t> ids;
  std::vector<double> p;
  double prob(int32_t id) const;  // 0 for a token outside the set
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  const SamplingParams& params() const { return params_; }
  void reseed(uint64_t seed);

  // Picks the next token. `logits` is modified in place by the penalties. If `logprobs` is set,
  // fills it with the chosen token's logprob and the `n_top` most likely tokens.
  int32_t sample(std::span<float> logits, const TokenHistory& history,
                 SampleLogprobs* logprobs = nullptr, int n_top = 0);

  // Speculative decoding (Leviathan et al. 2023; Chen et al. 2023). The caller applies
  // penalties first, as sample() does. distribution(): what sample() would draw from.
  void distribution(std::span<const float> logits, TokenDist& out);
  int32_t draw(const TokenDist& d);
  // The next token given the target distribution p and a draft drawn from q: the draft is
  // accepted with probability min(1, p(draft)/q(draft)), else the token comes from
  // max(p − q, 0) renormalised, so it is distributed exactly as p. Greedy p (one token): that
  // token, accepted iff it is the draft, with no random draw (output identical to sample()).
  int32_t verify(const TokenDist& p, const TokenDist& q, int32_t draft, int64_t vocab,
                 bool& accepted);

 private:
  struct Cand {
    float s;  // scaled logit
    float w;  // exp(s - s_max): unnormalised probability
    int32_t id;
  };
  double truncate(std::span<const float> logits);
  int32_t draw_from_logits(std::span<const float> logits);
  size_t nucleus(double target);
  double uniform01();  // [0, 1) from 53 random bits: the same on every platform

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<Cand> cands_;  // scratch, reused across calls (vocab-sized)
  std::vector<double> dense_;  // scratch of verify()
};

}  // namespace seek::generate
