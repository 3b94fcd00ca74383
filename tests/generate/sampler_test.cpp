#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"

namespace seek::generate {
namespace {

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<float> log_probs(std::vector<double> p) {
  std::vector<float> v;
  for (double x : p) v.push_back(float(std::log(x)));
  return v;
}

int32_t sample_once(Sampler& s, std::vector<float> logits) {
  TokenHistory h;
  return s.sample(logits, h);
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  EXPECT_EQ(sample_once(s, {0.1f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(sample_once(s, {5.0f, 5.0f}), 0);
  EXPECT_EQ(sample_once(s, {-3.0f}), 0);
  EXPECT_EQ(argmax(std::vector<float>{NAN, 1.0f, NAN, 1.5f}), 3);
  EXPECT_THROW(argmax(std::vector<float>{NAN, NAN}), Error);
}

TEST(Sampler, TopK1EqualsGreedy) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto logits = random_logits(5000, seed);
    SamplingParams p;
    p.temperature = 1.3f;
    p.top_k = 1;
    p.seed = seed;
    Sampler s(p);
    EXPECT_EQ(sample_once(s, logits), argmax(logits));
  }
}

TEST(Sampler, SameSeedSameTokens) {
  auto logits = random_logits(129280, 7, 2.0f);
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_p = 0.95f;
  p.top_k = 0;
  p.seed = 1234;
  Sampler a(p), b(p);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 50; ++i) {
    ta.push_back(sample_once(a, logits));
    tb.push_back(sample_once(b, logits));
  }
  EXPECT_EQ(ta, tb);
  p.seed = 1235;
  Sampler c(p);
  std::vector<int32_t> tc;
  for (int i = 0; i < 50; ++i) tc.push_back(sample_once(c, logits));
  EXPECT_NE(ta, tc);
  // reseed restarts the stream
  a.reseed(1234);
  std::vector<int32_t> ta2;
  for (int i = 0; i < 50; ++i) ta2.push_back(sample_once(a, logits));
  EXPECT_EQ(ta, ta2);
}

TEST(Sampler, PenaltiesMath) {
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  TokenHistory h;
  const int32_t prompt[] = {0, 1, 0};
  h.add_prompt(prompt);
  h.add_generated(2);
  h.add_generated(2);
  h.add_generated(3);
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  apply_penalties(l, h, p);
  EXPECT_FLOAT_EQ(l[0], 1.0f);               // positive: divided, once despite two occurrences
  EXPECT_FLOAT_EQ(l[1], -2.0f);              // negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 0.25f - 1.25f);      // 0.5/2, then 0.5·2 + 0.25
  EXPECT_FLOAT_EQ(l[3], 1.5f - 0.75f);       // 3/2, then 0.5·1 + 0.25
  EXPECT_FLOAT_EQ(l[4], 1.0f);               // never seen
  EXPECT_EQ(h.seen(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(h.generated_counts().at(2), 2);
}

TEST(Sampler, PenaltiesOnlyFrequencyPresenceIgnorePrompt) {
  std::vector<float> l = {1.0f, 1.0f};
  TokenHistory h;
  const int32_t prompt[] = {0};
  h.add_prompt(prompt);
  SamplingParams p;
  p.frequency_penalty = 1.0f;
  p.presence_penalty = 1.0f;
  apply_penalties(l, h, p);
  EXPECT_FLOAT_EQ(l[0], 1.0f);  // prompt tokens do not count for OpenAI penalties
}

TEST(Sampler, SampleAppliesPenaltiesBeforeGreedy) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 2.0f;
  Sampler s(p);
  TokenHistory h;
  h.add_generated(0);
  std::vector<float> l = {3.0f, 2.0f};
  EXPECT_EQ(s.sample(l, h), 1);
}

std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[sample_once(s, logits)];
  return counts;
}

TEST(Sampler, TopPKeepsTheNucleus) {
  const auto logits = log_probs({0.5, 0.3, 0.15, 0.05});
  SamplingParams p;
  p.top_p = 0.75f;
  p.seed = 3;
  auto c = histogram(p, logits, 4000);
  EXPECT_EQ(c.size(), 2u);  // 0.5 < 0.75 <= 0.8: ids 0 and 1
  EXPECT_NEAR(c[0] / 4000.0, 0.5 / 0.8, 0.03);
  EXPECT_NEAR(c[1] / 4000.0, 0.3 / 0.8, 0.03);
  p.top_p = 0.45f;  // within the first token's mass
  EXPECT_EQ(histogram(p, logits, 500).size(), 1u);
}

TEST(Sampler, TopPOnALargeFlatVocabularyGrowsThePrefix) {
  // Equal logits: the nucleus of mass 0.5 is the lower half of the ids (ties by lowest id);
  // it is far larger than the first 64-entry sorted chunk.
  const size_t V = 10000;
  std::vector<float> logits(V, 0.0f);
  SamplingParams p;
  p.top_p = 0.5f;
  p.seed = 11;
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int32_t id = sample_once(s, logits);
    ASSERT_LT(size_t(id), V / 2 + 1);
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 500u);
}

TEST(Sampler, TopPMatchesBruteForceOnRandomLogits) {
  const auto logits = random_logits(129280, 99, 4.0f);
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_p = 0.9f;
  p.seed = 5;
  // Brute-force nucleus on the temperature-scaled distribution.
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  const float m = logits[size_t(ids[0])] / p.temperature;
  double z = 0.0;
  for (float l : logits) z += std::exp(double(l / p.temperature - m));
  std::set<int32_t> nucleus;
  double cum = 0.0;
  for (int32_t id : ids) {
    nucleus.insert(id);
    cum += std::exp(double(logits[size_t(id)] / p.temperature - m)) / z;
    if (cum >= p.top_p) break;
  }
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < 300; ++i) {
    const int32_t id = sample_once(s, logits);
    ASSERT_TRUE(nucleus.count(id)) << id;
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), std::min<size_t>(nucleus.size() / 4, 50));
}

TEST(Sampler, TopKAndMinP) {
  const auto logits = log_probs({0.4, 0.3, 0.2, 0.06, 0.04});
  SamplingParams p;
  p.top_k = 2;
  p.seed = 1;
  auto c = histogram(p, logits, 2000);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.count(0) && c.count(1));
  p.top_k = 0;
  p.min_p = 0.2f;  // keep p >= 0.08: ids 0..2
  c = histogram(p, logits, 3000);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(c.count(3) || c.count(4));
  EXPECT_NEAR(c[2] / 3000.0, 0.2 / 0.9, 0.03);
}

TEST(Sampler, FollowsTheDistribution) {
  const auto logits = log_probs({0.1, 0.2, 0.3, 0.4});
  SamplingParams p;
  p.seed = 42;
  const int n = 20000;
  auto c = histogram(p, logits, n);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(c[i] / double(n), 0.1 * (i + 1), 0.015) << i;
  // Temperature 0.5 squares the probabilities: 1, 4, 9, 16 over 30.
  p.temperature = 0.5f;
  c = histogram(p, logits, n);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(c[i] / double(n), (i + 1) * (i + 1) / 30.0, 0.015) << i;
}

TEST(Sampler, MaskedLogitsAreNeverDrawn) {
  std::vector<float> logits = {-INFINITY, 0.0f, NAN, 0.0f};
  SamplingParams p;
  p.seed = 9;
  auto c = histogram(p, logits, 500);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.count(1) && c.count(3));
  std::vector<float> none = {-INFINITY, NAN};
  Sampler s(p);
  EXPECT_THROW(sample_once(s, none), Error);
}

TEST(Sampler, LogprobsAreAfterPenaltiesBeforeTemperature) {
  const std::vector<float> base = {1.0f, 3.0f, 2.0f, 3.0f};
  double z = 0.0;
  for (float l : base) z += std::exp(double(l));
  for (float t : {0.0f, 0.5f, 2.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 1;
    Sampler s(p);
    std::vector<float> l = base;
    TokenHistory h;
    SampleLogprobs lp;
    const int32_t id = s.sample(l, h, &lp, 3);
    EXPECT_EQ(id, 1);
    EXPECT_EQ(lp.chosen.id, 1);
    EXPECT_NEAR(lp.chosen.logprob, 3.0 - std::log(z), 1e-5);
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_EQ(lp.top[0].id, 1);  // tie with 3: lowest id first
    EXPECT_EQ(lp.top[1].id, 3);
    EXPECT_EQ(lp.top[2].id, 2);
    EXPECT_NEAR(lp.top[2].logprob, 2.0 - std::log(z), 1e-5);
  }
  // With a penalty the logprobs describe the penalised distribution.
  SamplingParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 1.0f;
  Sampler s(p);
  std::vector<float> l = base;
  TokenHistory h;
  h.add_generated(1);
  SampleLogprobs lp;
  EXPECT_EQ(s.sample(l, h, &lp, 0), 3);
  const double z2 = z - std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(lp.chosen.logprob, 3.0 - std::log(z2), 1e-5);
  EXPECT_TRUE(lp.top.empty());
}

TEST(Sampler, ValidatesParameters) {
  auto bad = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    EXPECT_THROW(p.validate(), Error);
    EXPECT_THROW(Sampler{p}, Error);
  };
  bad([](SamplingParams& p) { p.temperature = -0.1f; });
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.top_k = -1; });
  bad([](SamplingParams& p) { p.top_p = 0.0f; });
  bad([](SamplingParams& p) { p.top_p = 1.5f; });
  bad([](SamplingParams& p) { p.min_p = -0.5f; });
  bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; });
  SamplingParams ok;
  EXPECT_NO_THROW(ok.validate());
}

TEST(Sampler, DistributionIsWhatSampleDrawsFrom) {
  SamplingParams sp;
  sp.temperature = 0.7f;
  sp.top_k = 4;
  sp.top_p = 0.9f;
  Sampler s(sp);
  const std::vector<float> logits = {1.0f, 3.0f, -1.0f, 2.5f, 0.5f, 2.9f};
  TokenDist d;
  s.distribution(logits, d);
  double sum = 0.0;
  for (double p : d.p) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // top-4 {1, 5, 3, 0}, then the nucleus: what sample() can return, nothing else.
  std::set<int32_t> can(d.ids.begin(), d.ids.end());
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> l = logits;
    EXPECT_TRUE(can.count(s.sample(l, {}))) << i;
  }
  EXPECT_TRUE(can.count(1) && can.count(5));
  EXPECT_FALSE(can.count(2) || can.count(4));
  sp.temperature = 0.0f;
  Sampler g(sp);
  g.distribution(logits, d);
  ASSERT_EQ(d.ids.size(), 1u);
  EXPECT_EQ(d.ids[0], 1);
}

// Speculative verification: a draft drawn from q, then verify() against p, gives tokens
// distributed as p, and accepts with probability Σ min(p, q).
TEST(Sampler, VerifiedDraftsAreDistributedAsTheTarget) {
  SamplingParams sp;
  sp.seed = 11;
  Sampler s(sp);
  const TokenDist p{{0, 1, 2, 3, 4}, {0.40, 0.25, 0.20, 0.10, 0.05}};
  const TokenDist q{{0, 1, 2, 3, 5}, {0.10, 0.50, 0.05, 0.30, 0.05}};  // 5 is outside p
  constexpr int kN = 200000;
  std::vector<int> seen(6, 0);
  int accepted = 0;
  for (int i = 0; i < kN; ++i) {
    const int32_t d = s.draw(q);
    bool acc = false;
    const int32_t id = s.verify(p, q, d, 6, acc);
    ++seen[size_t(id)];
    accepted += acc;
    if (acc) {
      EXPECT_EQ(id, d);
    }
  }
  for (size_t i = 0; i < p.ids.size(); ++i) {
    const double pi = p.p[i], sd = std::sqrt(pi * (1 - pi) / kN);
    EXPECT_NEAR(double(seen[size_t(p.ids[i])]) / kN, pi, 5 * sd) << "token " << p.ids[i];
  }
  EXPECT_EQ(seen[5], 0);
  const double overlap = 0.10 + 0.25 + 0.05 + 0.10;  // Σ min(p, q)
  EXPECT_NEAR(double(accepted) / kN, overlap, 5 * std::sqrt(overlap * (1 - overlap) / kN));
}

TEST(Sampler, GreedyVerificationIsTheArgmax) {
  Sampler s(SamplingParams{});
  const TokenDist p{{7}, {1.0}}, q{{3}, {1.0}};
  bool acc = true;
  EXPECT_EQ(s.verify(p, q, 3, 10, acc), 7);
  EXPECT_FALSE(acc);
  EXPECT_EQ(s.verify(p, TokenDist{{7}, {1.0}}, 7, 10, acc), 7);
  EXPECT_TRUE(acc);
}

}  // namespace
}  // namespace seek::generate
