// The engine with one sequence (what `seek run` and `seek chat` are) against the tiny fixture
// checkpoints (tests/fixtures/models): greedy continuations must equal the official reference's,
// token for token; a chat's prefix re-use, limits, cancellation, sampling and the text path.
#include <gtest/gtest.h>
#include <omp.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "generate/engine.h"
#include "generate/reference_loop.h"
#include "tokenizer/tokenizer.h"

namespace seek::generate {
namespace {

const std::string kModels = std::string(SEEK_FIXTURES) + "/models/";

struct Fixture {
  std::unique_ptr<model::Model> model;
  std::vector<int32_t> prompt, greedy;
};

Fixture load(const std::string& name) {
  Fixture f;
  f.model = model::Model::load(kModels + name);
  const nlohmann::json ref = parse_json(read_file(kModels + name + "/reference.json"), name);
  f.prompt = ref["prompt"]["token_ids"].get<std::vector<int32_t>>();
  f.greedy = ref["greedy"]["continuation"].get<std::vector<int32_t>>();
  return f;
}

// As `seek run` sets the engine up: one sequence, its slot kept for the next prompt.
EngineOptions single(int64_t ctx = 0, int64_t prefill_chunk = 512) {
  EngineOptions o;
  o.max_seqs = 1;
  o.cache_slots = 0;
  o.context = ctx;
  o.prefill_chunk = prefill_chunk;
  o.precise = true;  // F32 activations: the reference is float32
  return o;
}

EngineRequest greedy(std::span<const int32_t> prompt, int64_t n) {
  EngineRequest p;
  p.prompt.assign(prompt.begin(), prompt.end());
  p.sampling.temperature = 0.0f;
  p.max_total_tokens = n;
  p.ignore_eos = true;  // the reference does not special-case EOS
  return p;
}

class GreedyFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(GreedyFixture, MatchesTheOfficialContinuation) {
  Fixture f = load(GetParam());
  Engine e(*f.model, nullptr, single());
  EXPECT_EQ(e.context(), f.model->config().max_position_embeddings);
  EngineResult r = e.generate(greedy(f.prompt, int64_t(f.greedy.size())));
  EXPECT_EQ(r.tokens, f.greedy);
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_FALSE(r.context_full);
  EXPECT_EQ(r.prompt_tokens, int64_t(f.prompt.size()));
  EXPECT_EQ(r.completion_tokens, int64_t(f.greedy.size()));
  EXPECT_EQ(r.decode_steps, int64_t(f.greedy.size()) - 1);
  EXPECT_TRUE(r.text.empty());
}

TEST_P(GreedyFixture, PromptInOneChunkOrManyGivesTheSameTokens) {
  Fixture f = load(GetParam());
  Engine e(*f.model, nullptr, single(0, /*prefill_chunk=*/5));  // 16 tokens: 5, 5, 5, 1
  EXPECT_EQ(e.generate(greedy(f.prompt, int64_t(f.greedy.size()))).tokens, f.greedy);
}

// The reference loop (tests only) agrees with the engine, in both precisions: it is a fair
// reference for the engine's batching tests.
TEST_P(GreedyFixture, TheReferenceLoopAgrees) {
  Fixture f = load(GetParam());
  ReferenceLoop ref(*f.model, nullptr);
  ReferenceParams p;
  p.sampling.temperature = 0.0f;
  p.max_new_tokens = int64_t(f.greedy.size());
  p.ignore_eos = true;
  p.precise = true;
  EXPECT_EQ(ref.generate(f.prompt, p).tokens, f.greedy);
  p.precise = false;
  EngineOptions o = single();
  o.precise = false;
  Engine e(*f.model, nullptr, o);
  EXPECT_EQ(e.generate(greedy(f.prompt, p.max_new_tokens)).tokens, ref.generate(f.prompt, p).tokens);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GreedyFixture,
                         ::testing::Values("v3-tiny", "v3-tiny-fp8", "v2-lite-tiny"));

TEST(SingleSequence, ReusesTheCachedPrefix) {
  Fixture f = load("v3-tiny");
  Engine e(*f.model, nullptr, single());
  EngineResult a = e.generate(greedy(f.prompt, 8));
  ASSERT_EQ(a.tokens, f.greedy);
  EXPECT_EQ(a.cached_tokens, 0);
  // The slot holds the prompt and the 7 fed tokens (the last sampled one was never fed): the
  // whole continuation as a prompt finds all of them.
  std::vector<int32_t> all = f.prompt;
  all.insert(all.end(), f.greedy.begin(), f.greedy.end());
  EXPECT_EQ(e.generate(greedy(all, 1)).cached_tokens, int64_t(f.prompt.size()) + 7);

  // A follow-up prompt that extends prompt + 4 generated tokens continues identically and
  // only prefills what the cache does not hold.
  std::vector<int32_t> next = f.prompt;
  next.insert(next.end(), f.greedy.begin(), f.greedy.begin() + 4);
  EngineResult b = e.generate(greedy(next, 4));
  EXPECT_EQ(b.cached_tokens, int64_t(next.size()) - 1);  // at least one token is recomputed
  EXPECT_EQ(b.tokens, std::vector<int32_t>(f.greedy.begin() + 4, f.greedy.end()));

  // A prompt that diverges keeps only the common prefix.
  std::vector<int32_t> other = f.prompt;
  other[10] = 5;
  EngineResult c = e.generate(greedy(other, 1));
  EXPECT_EQ(c.cached_tokens, 10);
  // The same prompt on a fresh engine gives the same token.
  Engine fresh(*f.model, nullptr, single());
  EXPECT_EQ(fresh.generate(greedy(other, 1)).tokens, c.tokens);

  e.forget_prefixes();
  EngineResult d = e.generate(greedy(f.prompt, 8));
  EXPECT_EQ(d.cached_tokens, 0);
  EXPECT_EQ(d.tokens, f.greedy);
}

TEST(SingleSequence, ContextLimit) {
  Fixture f = load("v3-tiny");
  Engine e(*f.model, nullptr, single(/*ctx=*/20));
  EXPECT_EQ(e.context(), 20);
  EngineResult r = e.generate(greedy(f.prompt, -1));
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_TRUE(r.context_full);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(f.greedy.begin(), f.greedy.begin() + 4));  // 16 + 4 = 20

  std::vector<int32_t> long_prompt(20, 5);
  try {
    e.generate(greedy(long_prompt, 1));
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("prompt has 20 tokens, context limit is 20"),
              std::string::npos)
        << err.what();
  }
  EngineOptions o = single(/*ctx=*/1 << 20);  // capped at max_position_embeddings
  Engine big(*f.model, nullptr, o);
  EXPECT_EQ(big.context(), 1024);
}

TEST(SingleSequence, RejectsBadPrompts) {
  Fixture f = load("v3-tiny");
  Engine e(*f.model, nullptr, single());
  EXPECT_THROW(e.generate(greedy(std::vector<int32_t>{}, 1)), Error);
  try {
    e.generate(greedy(std::vector<int32_t>{0, 5, 1000}, 1));
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("vocab_size 1000"), std::string::npos) << err.what();
  }
  EngineRequest p = greedy(f.prompt, 1);
  p.stop = {"x"};
  EXPECT_THROW(e.generate(p), Error);  // stop strings need a tokenizer
  p = greedy(f.prompt, 1);
  p.sampling.top_p = 2.0f;
  EXPECT_THROW(e.generate(p), Error);
}

TEST(SingleSequence, StopsOnEosAndCancel) {
  Fixture f = load("v3-tiny");
  Engine e(*f.model, nullptr, single());
  EXPECT_TRUE(e.is_eos(1));  // config eos_token_id
  EXPECT_FALSE(e.is_eos(809));

  // Cancellation is polled before every forward: cancelling in the 3rd token's callback
  // ends generation with 3 tokens.
  std::atomic<bool> cancel{false};
  EngineCallbacks cb;
  int seen = 0;
  cb.on_token = [&](const TokenEvent&) {
    if (++seen == 3) cancel = true;
  };
  EngineRequest req = greedy(f.prompt, 8);
  req.cancel = &cancel;
  EngineResult r = e.generate(req, cb);
  EXPECT_EQ(r.finish, FinishReason::Cancelled);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(f.greedy.begin(), f.greedy.begin() + 3));

  // Cancelled before the prompt was processed: nothing generated, nothing cached.
  e.forget_prefixes();
  EngineResult c = e.generate(req);
  EXPECT_EQ(c.finish, FinishReason::Cancelled);
  EXPECT_TRUE(c.tokens.empty());
  EXPECT_EQ(e.generate(greedy(f.prompt, 1)).cached_tokens, 0);

  EngineResult z = e.generate(greedy(f.prompt, 0));
  EXPECT_EQ(z.finish, FinishReason::Length);
  EXPECT_TRUE(z.tokens.empty());
}

TEST(SingleSequence, SeededSamplingIsReproducible) {
  Fixture f = load("v2-lite-tiny");
  EngineRequest p;
  p.prompt = f.prompt;
  p.max_total_tokens = 12;
  p.sampling.temperature = 1.0f;
  p.sampling.top_p = 0.9f;
  p.sampling.repetition_penalty = 1.1f;
  p.sampling.seed = 77;
  p.top_logprobs = 2;
  std::vector<SampleLogprobs> lps;
  EngineCallbacks cb;
  cb.on_token = [&](const TokenEvent& ev) { lps.push_back(*ev.logprobs); };
  Engine a(*f.model, nullptr, single()), b(*f.model, nullptr, single());
  EngineResult ra = a.generate(p, cb), rb = b.generate(p);
  EXPECT_EQ(ra.tokens, rb.tokens);
  ASSERT_EQ(lps.size(), ra.tokens.size());
  for (size_t i = 0; i < ra.tokens.size(); ++i) {
    EXPECT_EQ(lps[i].chosen.id, ra.tokens[i]);
    EXPECT_LE(lps[i].chosen.logprob, 0.0f);
    ASSERT_EQ(lps[i].top.size(), 2u);
    EXPECT_GE(lps[i].top[0].logprob, lps[i].top[1].logprob);
  }
  // The reference loop samples the same tokens from the same seed.
  ReferenceLoop ref(*f.model, nullptr);
  ReferenceParams rp;
  rp.sampling = p.sampling;
  rp.max_new_tokens = 12;
  rp.precise = true;
  EXPECT_EQ(ref.generate(f.prompt, rp).tokens, ra.tokens);
  p.sampling.seed = 78;
  EngineResult rc = a.generate(p);
  EXPECT_NE(ra.tokens, rc.tokens);
}

// OpenMP thread counts belong to each thread: the engine thread must run with the count its
// creator set (--threads), not the process default.
TEST(SingleSequence, TheEngineThreadUsesTheCreatorsThreadCount) {
  struct Probe final : LogitsProcessor {
    int threads = 0;
    void process(std::span<float>, int64_t) override { threads = omp_get_max_threads(); }
  };
  Fixture f = load("v3-tiny");
  const int before = omp_get_max_threads();
  for (int want : {1, 3}) {
    omp_set_num_threads(want);
    Engine e(*f.model, nullptr, single());
    auto probe = std::make_shared<Probe>();
    EngineRequest req = greedy(f.prompt, 1);
    req.processor = probe;
    e.generate(req);
    EXPECT_EQ(probe->threads, want);
  }
  omp_set_num_threads(before);
}

// With the DeepSeek-V3 tokenizer: the tiny models' ids (< 1000) are real tokens, so the text
// path (stream decoding, stop strings) runs on real text.
TEST(SingleSequence, TextAndStopStrings) {
  Fixture f = load("v3-tiny");
  const auto tok =
      tokenizer::Tokenizer::load(std::string(SEEK_FIXTURES) + "/tokenizer/deepseek-v3");
  Engine gen(*f.model, &tok, single());
  EXPECT_TRUE(gen.is_eos(tok.eos_id()));
  // As `seek run` asks: reasoning split on, -n counting every token.
  auto request = [&](int64_t n) {
    EngineRequest p = greedy(f.prompt, n);
    p.reasoning = true;
    return p;
  };
  std::string streamed;
  EngineCallbacks cb;
  cb.on_text = [&](std::string_view t, bool reasoning) {
    EXPECT_FALSE(reasoning);
    streamed += t;
  };
  EngineResult r = gen.generate(request(8), cb);
  ASSERT_EQ(r.tokens, f.greedy);
  const std::string full = tok.decode(f.greedy, true);
  EXPECT_EQ(r.text, full);
  EXPECT_EQ(streamed, full);
  ASSERT_GT(full.size(), 6u);

  // A stop string from the middle of that text cuts it there, and is not emitted.
  const size_t cut = full.size() / 2;
  EngineRequest p = request(8);
  p.stop = {full.substr(cut, 3)};
  const size_t first = full.find(p.stop[0]);
  streamed.clear();
  EngineResult s = gen.generate(p, cb);
  EXPECT_EQ(s.finish, FinishReason::Stop);
  EXPECT_EQ(s.stop_string, p.stop[0]);
  EXPECT_EQ(s.text, full.substr(0, first));
  EXPECT_EQ(streamed, s.text);
  EXPECT_LT(s.tokens.size(), f.greedy.size());

  // A prompt that opened <think>: everything up to </think> is reasoning.
  p = request(8);
  p.starts_in_thinking = true;
  std::string reasoning;
  EngineCallbacks rcb;
  rcb.on_text = [&](std::string_view t, bool is_reasoning) {
    EXPECT_TRUE(is_reasoning);
    reasoning += t;
  };
  EngineResult t = gen.generate(p, rcb);
  EXPECT_EQ(t.finish, FinishReason::Length);  // -n counts the thinking tokens too
  EXPECT_EQ(t.tokens, f.greedy);
  EXPECT_EQ(t.reasoning_tokens, 8);
  EXPECT_TRUE(t.text.empty());
  EXPECT_EQ(t.reasoning, reasoning);
  EXPECT_NE(full.find(t.reasoning), std::string::npos);  // only newlines at the ends trimmed
  EXPECT_GE(t.reasoning.size() + 2, full.size());
}

}  // namespace
}  // namespace seek::generate
