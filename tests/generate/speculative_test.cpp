// Speculative decoding with the MTP module as the draft: greedy output token for token the same
// as without drafts, sampled output with the same distribution, acceptance counted.
//
// The model: the v3-tiny fixture made draftable (tools/draftable_model.h): a bigram model plus
// eps times the real blocks, whose MTP module drafts the bigram part. Small eps: most drafts are
// accepted; eps = 1: many are rejected. Both paths run through the real transformer.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "generate/engine.h"
#include "generate/test_model.h"
#include "model/config.h"
#include "model/transformer.h"
#include "tools/draftable_model.h"

namespace seek::generate {
namespace {

class DraftableModel {
 public:
  explicit DraftableModel(float eps) {
    dir_ = (std::filesystem::temp_directory_path() /
            fmt::format("seek-spec-model-{}-{}", ::getpid(), int(std::lround(eps * 1000))))
               .string();
    tools::write_draftable_model(test::fixture_path("models/v3-tiny"), dir_, eps);
    model_ = model::Model::load(dir_);
  }
  ~DraftableModel() {
    model_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const model::Model& model() const { return *model_; }

 private:
  std::string dir_;
  std::unique_ptr<model::Model> model_;
};

EngineOptions opts(bool speculative, bool precise = true, int draft_tokens = 2) {
  EngineOptions o;
  o.spec_tokens = draft_tokens;
  o.precise = precise;
  o.context = 256;
  o.max_seqs = 4;
  o.cache_slots = 2;
  o.speculative = speculative;
  o.spec_adaptive = false;  // keep drafting whatever the acceptance, so both paths run
  return o;
}

EngineRequest request(std::vector<int32_t> prompt, int64_t max_tokens, float temperature,
                      uint64_t seed) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

std::vector<int32_t> prompt_of(int seed, int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t(2 + (seed * 7919 + i * 104729) % 997));
  return p;
}

// Greedy: the same tokens with and without drafts, for single requests and concurrent ones.
void expect_greedy_identical(float eps, bool expect_most_accepted, bool precise = true,
                             int draft_tokens = 2) {
  DraftableModel dm(eps);
  Engine plain(dm.model(), nullptr, opts(false, precise));
  Engine spec(dm.model(), nullptr, opts(true, precise, draft_tokens));
  int64_t drafted = 0, accepted = 0;
  for (int k = 0; k < 6; ++k) {
    const EngineRequest r = request(prompt_of(k, 5 + 7 * k), 60, 0.0f, 0);
    const EngineResult a = plain.generate(r);
    const EngineResult b = spec.generate(r);
    ASSERT_EQ(a.tokens, b.tokens) << "prompt " << k << " eps " << eps << " drafts " << draft_tokens;
    EXPECT_LT(b.decode_steps, a.decode_steps + 1);
    drafted += b.drafted_tokens;
    accepted += b.accepted_tokens;
  }
  EXPECT_GT(drafted, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted + (expect_most_accepted ? 1 : 0));
  if (expect_most_accepted) EXPECT_GT(accepted * 2, drafted);
  else EXPECT_LT(accepted, drafted);  // rejections happened: the rollback path ran
  const EngineStats st = spec.stats();
  EXPECT_EQ(int64_t(st.drafted_tokens), drafted);
  EXPECT_EQ(int64_t(st.accepted_tokens), accepted);

  // Concurrent: drafting and non-drafting sequences (a penalty turns drafts off) share steps.
  std::vector<EngineRequest> reqs;
  for (int k = 0; k < 4; ++k) reqs.push_back(request(prompt_of(10 + k, 9 + 5 * k), 40, 0.0f, 0));
  reqs[3].sampling.repetition_penalty = 1.3f;
  std::vector<std::future<EngineResult>> fa, fb;
  for (const EngineRequest& r : reqs) {
    fa.push_back(std::async(std::launch::async, [&plain, r] { return plain.generate(r); }));
    fb.push_back(std::async(std::launch::async, [&spec, r] { return spec.generate(r); }));
  }
  for (size_t k = 0; k < reqs.size(); ++k) {
    const EngineResult a = fa[k].get(), b = fb[k].get();
    EXPECT_EQ(a.tokens, b.tokens) << "concurrent request " << k;
    if (k == 3) {
      EXPECT_EQ(b.drafted_tokens, 0);
    }
  }
}

TEST(Speculative, GreedyIsIdenticalWhenDraftsAreMostlyRight) { expect_greedy_identical(0.05f, true); }

TEST(Speculative, GreedyIsIdenticalWhenDraftsAreOftenWrong) { expect_greedy_identical(1.0f, false); }

TEST(Speculative, GreedyIsIdenticalWithOneDraftPerStep) {
  expect_greedy_identical(0.05f, true, true, 1);
  expect_greedy_identical(1.0f, false, true, 1);
}

TEST(Speculative, GreedyIsIdenticalWithFourChainedDrafts) {
  expect_greedy_identical(0.05f, true, true, 4);
  expect_greedy_identical(1.0f, false, true, 4);
}

// The second draft comes from the MTP module's own hidden state after the first: where the
// module drafts well it is accepted mostly too (~65% here, the first ~85%), and the steps drop:
// 2.8 tokens per step with three drafts against 1.9 with one.
TEST(Speculative, ChainedDraftsAreAcceptedAndSaveSteps) {
  DraftableModel dm(0.05f);
  int64_t steps_one = 0;
  for (int k : {1, 3}) {
    Engine spec(dm.model(), nullptr, opts(true, true, k));
    const EngineResult r = spec.generate(request(prompt_of(4, 11), 80, 0.0f, 0));
    ASSERT_EQ(int(r.drafted_at.size()), k);
    int64_t drafted = 0, accepted = 0;
    for (int j = 0; j < k; ++j) {
      EXPECT_GT(r.accepted_at[size_t(j)] * 2, r.drafted_at[size_t(j)]) << "k " << k << ", draft " << j;
      // Draft j is verified only after draft j-1 was accepted.
      if (j > 0) EXPECT_LE(r.drafted_at[size_t(j)], r.accepted_at[size_t(j - 1)]);
      drafted += r.drafted_at[size_t(j)];
      accepted += r.accepted_at[size_t(j)];
    }
    EXPECT_EQ(drafted, r.drafted_tokens);
    EXPECT_EQ(accepted, r.accepted_tokens);
    // Every decoding step yields one token plus its accepted drafts (the last step one less
    // when the limit is reached at an accepted draft).
    EXPECT_LE(r.completion_tokens - 1, r.decode_steps + r.accepted_tokens);
    EXPECT_GE(r.completion_tokens, r.decode_steps + r.accepted_tokens);
    if (k == 1) steps_one = r.decode_steps;
    else EXPECT_LT(r.decode_steps * 4, steps_one * 3) << "three drafts per step against one";
  }
}

// BF16 activations (the default): a two-token verification chunk rounds its first token as a
// one-token step does, so the output is still the same bit for bit.
TEST(Speculative, GreedyIsIdenticalWithBf16Activations) { expect_greedy_identical(0.05f, true, false); }

TEST(Speculative, PrefixReuseKeepsTheDraftCacheInStep) {
  DraftableModel dm(0.05f);
  Engine plain(dm.model(), nullptr, opts(false));
  Engine spec(dm.model(), nullptr, opts(true));
  // The second prompt extends the first's prompt + output: its prefix comes from the cache.
  const EngineRequest r1 = request(prompt_of(3, 20), 20, 0.0f, 0);
  const EngineResult a1 = plain.generate(r1), b1 = spec.generate(r1);
  ASSERT_EQ(a1.tokens, b1.tokens);
  std::vector<int32_t> p2 = r1.prompt;
  p2.insert(p2.end(), b1.tokens.begin(), b1.tokens.end());
  p2.push_back(7);
  const EngineRequest r2 = request(p2, 30, 0.0f, 0);
  const EngineResult a2 = plain.generate(r2), b2 = spec.generate(r2);
  EXPECT_GT(b2.cached_tokens, 0);
  EXPECT_EQ(a2.tokens, b2.tokens);
  EXPECT_GT(b2.accepted_tokens * 2, b2.drafted_tokens);  // drafts as good as on a fresh prompt
}

// Many seeded requests at temperature 0.5 with and without drafts: the distribution of the
// output tokens at `positions` (the first output token comes from the prompt; the ones after
// it are drafted and verified, the k-th draft of a step chained from the ones before) must
// agree. A two-sample chi-square over the tokens seen at least 10 times in the pooled runs, the
// rest pooled into one cell; the seeds are fixed, so the outcome is too.
void expect_same_distribution(int draft_tokens, const std::vector<int>& positions) {
  DraftableModel dm(0.3f);  // about a third of the drafts accepted
  EngineOptions o = opts(false, true, draft_tokens);
  o.max_seqs = 8;
  Engine plain(dm.model(), nullptr, o);
  o.speculative = true;
  Engine spec(dm.model(), nullptr, o);
  constexpr int kRuns = 400;
  constexpr float kTemp = 0.5f;  // peaked enough for ~15 cells of 10+ counts
  const std::vector<int32_t> prompt = prompt_of(1, 12);
  int64_t drafted = 0, accepted = 0, chained = 0;
  for (int pos : positions) {
    std::map<int32_t, std::pair<int, int>> counts;
    std::vector<std::future<EngineResult>> fa, fb;
    for (int k = 0; k < kRuns; ++k) {
      // Different seeds on the two sides: the same seed would couple their draws.
      const EngineRequest ra = request(prompt, pos + 1, kTemp, 1000 + uint64_t(k));
      const EngineRequest rb = request(prompt, pos + 1, kTemp, 50000 + uint64_t(k));
      fa.push_back(std::async(std::launch::deferred, [&plain, ra] { return plain.generate(ra); }));
      fb.push_back(std::async(std::launch::deferred, [&spec, rb] { return spec.generate(rb); }));
    }
    for (int k = 0; k < kRuns; ++k) {
      const EngineResult a = fa[size_t(k)].get(), b = fb[size_t(k)].get();
      ++counts[a.tokens[size_t(pos)]].first;
      ++counts[b.tokens[size_t(pos)]].second;
      drafted += b.drafted_tokens;
      accepted += b.accepted_tokens;
      for (size_t j = 1; j < b.drafted_at.size(); ++j) chained += b.drafted_at[j];
    }
    double chi2 = 0.0;
    int cells = 0;
    int rest_a = 0, rest_b = 0;
    auto add = [&](int x, int y) {
      const double e = (x + y) / 2.0;
      chi2 += (x - e) * (x - e) / e + (y - e) * (y - e) / e;
      ++cells;
    };
    for (const auto& [id, c] : counts) {
      if (c.first + c.second >= 10) add(c.first, c.second);
      else rest_a += c.first, rest_b += c.second;
    }
    if (rest_a + rest_b > 0) add(rest_a, rest_b);
    ASSERT_GE(cells, 3) << "position " << pos;
    // chi-square with cells − 1 degrees of freedom: mean cells − 1, sd sqrt(2 (cells − 1));
    // 5 sd above the mean is far beyond chance (p < 1e-5) yet well below a wrong verifier
    // (accepting every draft gives chi-square 166 on 15 cells here).
    const double df = cells - 1;
    EXPECT_LT(chi2, df + 5.0 * std::sqrt(2.0 * df)) << "position " << pos << ", " << cells << " cells";
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
  if (draft_tokens > 1) EXPECT_GT(chained, 0) << "chained drafts were verified";
}

TEST(Speculative, SampledTokensKeepTheirDistribution) { expect_same_distribution(1, {1, 2}); }

TEST(Speculative, SampledTokensKeepTheirDistributionWithChainedDrafts) {
  expect_same_distribution(3, {2, 3});
}

TEST(Speculative, ASequenceWhoseDraftsAreRejectedStopsDrafting) {
  DraftableModel dm(1.0f);  // few drafts accepted: far below the acceptance floor
  EngineOptions o = opts(true);
  o.spec_adaptive = true;
  Engine spec(dm.model(), nullptr, o);
  Engine plain(dm.model(), nullptr, opts(false));
  const EngineRequest r = request(prompt_of(2, 9), 80, 0.0f, 0);
  const EngineResult a = plain.generate(r), b = spec.generate(r);
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_FALSE(b.drafted_at.empty());
  EXPECT_EQ(b.drafted_at[0], 16) << "stops after the first 16 first drafts";
  // Later drafts of a step are verified only after an accepted one.
  EXPECT_LE(b.drafted_tokens, 16 + b.accepted_at[0]);
  EXPECT_LT(b.accepted_tokens, 5);
}

TEST(Speculative, RefusedForAModelWithoutMtp) {
  EngineOptions o = opts(true);
  try {
    Engine e(test::test_model(), nullptr, o);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("MTP"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace seek::generate
