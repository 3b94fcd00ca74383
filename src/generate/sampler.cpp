#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace seek::generate {

void SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f)
    fail("temperature must be >= 0 (got {})", temperature);
  if (top_k < 0) fail("top_k must be >= 0 (got {})", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top_p must be in (0, 1] (got {})", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail("min_p must be in [0, 1] (got {})", min_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    fail("repetition_penalty must be > 0 (got {})", repetition_penalty);
  if (!std::isfinite(frequency_penalty))
    fail("frequency_penalty must be finite (got {})", frequency_penalty);
  if (!std::isfinite(presence_penalty))
    fail("presence_penalty must be finite (got {})", presence_penalty);
}

// ---- history ----

void TokenHistory::clear() {
  seen_.clear();
  seen_index_.clear();
  counts_.clear();
}

void TokenHistory::mark_seen(int32_t id) {
  if (seen_index_.emplace(id, int32_t(seen_.size())).second) seen_.push_back(id);
}

void TokenHistory::add_prompt(std::span<const int32_t> ids) {
  for (int32_t id : ids) mark_seen(id);
}

void TokenHistory::add_generated(int32_t id) {
  mark_seen(id);
  ++counts_[id];
}

// ---- penalties ----

void apply_penalties(std::span<float> logits, const TokenHistory& history,
                     const SamplingParams& p) {
  const auto n = int64_t(logits.size());
  if (p.repetition_penalty != 1.0f) {
    const float r = p.repetition_penalty;
    for (int32_t id : history.seen()) {
      if (id < 0 || id >= n) continue;
      float& l = logits[size_t(id)];
      l = l > 0.0f ? l / r : l * r;
    }
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    for (const auto& [id, count] : history.generated_counts()) {
      if (id < 0 || id >= n || count <= 0) continue;
      logits[size_t(id)] -= p.frequency_penalty * float(count) + p.presence_penalty;
    }
  }
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = -1;
  float best_v = 0.0f;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (std::isnan(v)) continue;
    if (best < 0 || v > best_v) {  // strict: the first (lowest) id wins ties
      best = int32_t(i);
      best_v = v;
    }
  }
  if (best < 0) fail("cannot sample: every logit is NaN");
  return best;
}

// ---- sampler ----

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

void Sampler::reseed(uint64_t seed) { rng_.seed(seed); }

double Sampler::uniform01() { return double(rng_() >> 11) * 0x1.0p-53; }

static void compute_logprobs(std::span<const float> logits, int32_t chosen, int n_top,
                             SampleLogprobs* out) {
  // log_softmax in double: lse = m + log Σ exp(l - m).
  float m = -std::numeric_limits<float>::infinity();
  for (float v : logits)
    if (v > m) m = v;
  double sum = 0.0;
  for (float v : logits)
    if (v > -std::numeric_limits<float>::infinity()) sum += std::exp(double(v) - double(m));
  const double lse = double(m) + std::log(sum);
  auto lp = [&](int32_t id) { return float(double(logits[size_t(id)]) - lse); };
  out->chosen = {chosen, lp(chosen)};
  out->top.clear();
  const size_t n = std::min(size_t(std::max(n_top, 0)), logits.size());
  if (n == 0) return;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
  auto key = [&](int32_t id) {  // NaN sorts last (a valid strict weak order)
    const float v = logits[size_t(id)];
    return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v;
  };
  auto better = [&](int32_t a, int32_t b) {
    const float va = key(a), vb = key(b);
    return va > vb || (va == vb && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), better);
  for (size_t i = 0; i < n; ++i) out->top.push_back({ids[i], lp(ids[i])});
}

int32_t Sampler::sample(std::span<float> logits, const TokenHistory& history,
                        SampleLogprobs* logprobs, int n_top) {
  if (logits.empty()) fail("cannot sample from an empty vocabulary");
  if (params_.has_penalties()) apply_penalties(logits, history, params_);
  const int32_t id = params_.greedy() ? argmax(logits) : draw_from_logits(logits);
  if (logprobs) compute_logprobs(logits, id, n_top, logprobs);
  return id;
}

// Steps 4's truncation: cands_ holds the tokens that can be drawn with their unnormalised
// weights; returns the weights' sum.
double Sampler::truncate(std::span<const float> logits) {
  const float inv_t = 1.0f / params_.temperature;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  cands_.clear();
  cands_.reserve(logits.size());
  float smax = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float s = logits[i] * inv_t;
    if (!(s > kNegInf)) continue;  // -inf (masked) and NaN never win
    cands_.push_back({s, 0.0f, int32_t(i)});
    smax = std::max(smax, s);
  }
  if (cands_.empty()) fail("cannot sample: every logit is -inf or NaN");

  // A strict total order (value, then lowest id) so that truncation is deterministic.
  auto better = [](const Cand& a, const Cand& b) { return a.s > b.s || (a.s == b.s && a.id < b.id); };
  const auto first = cands_.begin();
  if (params_.top_k > 0 && size_t(params_.top_k) < cands_.size()) {
    std::nth_element(first, first + params_.top_k, cands_.end(), better);
    cands_.resize(size_t(params_.top_k));
  }
  double z = 0.0;  // unnormalised probabilities relative to the top token
  for (Cand& c : cands_) z += (c.w = std::exp(c.s - smax));

  if (params_.top_p < 1.0f) cands_.resize(nucleus(double(params_.top_p) * z));

  if (params_.min_p > 0.0f) {
    // p_i >= min_p · p_max  ⇔  w_i >= min_p (w_max = 1); the top token always survives.
    std::erase_if(cands_, [&](const Cand& c) { return c.w < params_.min_p; });
  }

  double total = 0.0;
  for (const Cand& c : cands_) total += c.w;
  return total;
}

int32_t Sampler::draw_from_logits(std::span<const float> logits) {
  const double total = truncate(logits);
  const double r = uniform01() * total;
  double cum = 0.0;
  for (const Cand& c : cands_) {
    cum += c.w;
    if (r < cum) return c.id;
  }
  return cands_.back().id;
}

// ---- speculative decoding ----

double TokenDist::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return p[i];
  return 0.0;
}

void Sampler::distribution(std::span<const float> logits, TokenDist& out) {
  out.ids.clear();
  out.p.clear();
  if (params_.greedy()) {
    out.ids.push_back(argmax(logits));
    out.p.push_back(1.0);
    return;
  }
  const double total = truncate(logits);
  out.ids.reserve(cands_.size());
  out.p.reserve(cands_.size());
  for (const Cand& c : cands_) {
    out.ids.push_back(c.id);
    out.p.push_back(double(c.w) / total);
  }
}

int32_t Sampler::draw(const TokenDist& d) {
  if (d.ids.empty()) fail("cannot sample from an empty distribution");
  if (d.ids.size() == 1) return d.ids[0];
  const double r = uniform01();
  double cum = 0.0;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    cum += d.p[i];
    if (r < cum) return d.ids[i];
  }
  return d.ids.back();
}

int32_t Sampler::verify(const TokenDist& p, const TokenDist& q, int32_t draft, int64_t vocab,
                        bool& accepted) {
  if (p.ids.empty()) fail("cannot sample from an empty distribution");
  accepted = false;
  if (p.ids.size() == 1) {  // greedy (or a one-token nucleus): no draw, the same as without a draft
    accepted = p.ids[0] == draft;
    return p.ids[0];
  }
  const double pd = p.prob(draft), qd = q.prob(draft);
  if (qd > 0.0 && uniform01() * qd < pd) {  // u < p(d) / q(d)
    accepted = true;
    return draft;
  }
  // Rejected: draw from the residual max(p − q, 0), renormalised. The draft was drawn from q, so
  // P(token = x) = q(x)·min(1, p(x)/q(x)) + (1 − Σ min(p, q))·residual(x) = p(x).
  dense_.assign(size_t(vocab), 0.0);
  for (size_t i = 0; i < q.ids.size(); ++i) dense_[size_t(q.ids[i])] = q.p[i];
  double total = 0.0;
  for (size_t i = 0; i < p.ids.size(); ++i) total += std::max(p.p[i] - dense_[size_t(p.ids[i])], 0.0);
  if (!(total > 0.0)) return draw(p);  // p ≤ q everywhere only when p = q (up to rounding)
  const double r = uniform01() * total;
  double cum = 0.0;
  for (size_t i = 0; i < p.ids.size(); ++i) {
    const double w = std::max(p.p[i] - dense_[size_t(p.ids[i])], 0.0);
    cum += w;
    if (w > 0.0 && r < cum) return p.ids[i];
  }
  for (size_t i = p.ids.size(); i-- > 0;)
    if (p.p[i] > dense_[size_t(p.ids[i])]) return p.ids[i];
  return p.ids.back();
}

// Reorders cands_ so that its first k entries are the smallest set of most likely tokens whose
// weight reaches `target`, and returns k. A weighted quickselect: expected O(n) however large
// the nucleus is (a flat distribution at top_p 0.95 keeps most of the vocabulary, where a sort
// would cost O(n log n) per token).
size_t Sampler::nucleus(double target) {
  auto better = [](const Cand& a, const Cand& b) { return a.s > b.s || (a.s == b.s && a.id < b.id); };
  size_t lo = 0, hi = cands_.size();
  double acc = 0.0;  // weight of [0, lo): tokens known to be in the nucleus
  while (hi - lo > 16) {
    // Median of three as the pivot, moved to the end of the range.
    size_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
    if (better(cands_[b], cands_[a])) std::swap(a, b);
    if (better(cands_[c], cands_[b])) std::swap(b, c);
    if (better(cands_[b], cands_[a])) std::swap(a, b);
    std::swap(cands_[b], cands_[hi - 1]);
    const Cand pivot = cands_[hi - 1];
    auto mid = std::partition(cands_.begin() + std::ptrdiff_t(lo), cands_.begin() + std::ptrdiff_t(hi - 1),
                              [&](const Cand& x) { return better(x, pivot); });
    const size_t m = size_t(mid - cands_.begin());
    double left = 0.0;
    for (size_t i = lo; i < m; ++i) left += cands_[i].w;
    if (acc + left >= target) {
      hi = m;  // the nucleus ends among the tokens better than the pivot
      continue;
    }
    std::swap(cands_[m], cands_[hi - 1]);  // the pivot joins right after them
    acc += left + pivot.w;
    if (acc >= target) return m + 1;
    lo = m + 1;
  }
  std::sort(cands_.begin() + std::ptrdiff_t(lo), cands_.begin() + std::ptrdiff_t(hi), better);
  for (size_t i = lo; i < hi; ++i) {
    acc += cands_[i].w;
    if (acc >= target) return i + 1;
  }
  return std::max<size_t>(hi, 1);  // rounding left the target unreached: keep what was scanned
}

}  // namespace seek::generate
