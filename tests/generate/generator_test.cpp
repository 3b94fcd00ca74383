// The decode loop against the tiny fixture checkpoints (tests/fixtures/models): greedy
// continuations must equal the official reference's, token for token.
#include "generate/generator.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
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

GenerateParams greedy_params(int64_t n) {
  GenerateParams p;
  p.sampling.temperature = 0.0f;
  p.max_new_tokens = n;
  p.precise = true;  // F32 prefill: the reference is float32
  p.ignore_eos = true;  // the reference does not special-case EOS
  return p;
}

class GreedyFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(GreedyFixture, MatchesTheOfficialContinuation) {
  Fixture f = load(GetParam());
  Generator gen(*f.model, nullptr);
  EXPECT_EQ(gen.context_limit(), f.model->config().max_position_embeddings);
  GenerateResult r = gen.generate(f.prompt, greedy_params(int64_t(f.greedy.size())));
  EXPECT_EQ(r.tokens, f.greedy);
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_FALSE(r.context_full);
  EXPECT_EQ(r.prompt_tokens, int64_t(f.prompt.size()));
  EXPECT_EQ(r.gen_tokens, int64_t(f.greedy.size()));
  EXPECT_EQ(r.decode_steps, int64_t(f.greedy.size()) - 1);
  EXPECT_TRUE(r.text.empty());
}

TEST_P(GreedyFixture, PromptInOneChunkOrManyGivesTheSameTokens) {
  Fixture f = load(GetParam());
  Generator gen(*f.model, nullptr);
  GenerateParams p = greedy_params(int64_t(f.greedy.size()));
  p.prefill_chunk = 5;  // 16 prompt tokens: chunks of 5, 5, 5, 1
  EXPECT_EQ(gen.generate(f.prompt, p).tokens, f.greedy);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GreedyFixture,
                         ::testing::Values("v3-tiny", "v3-tiny-fp8", "v2-lite-tiny"));

TEST(Generator, ReusesTheCachedPrefix) {
  Fixture f = load("v3-tiny");
  Generator gen(*f.model, nullptr);
  GenerateResult a = gen.generate(f.prompt, greedy_params(8));
  ASSERT_EQ(a.tokens, f.greedy);
  EXPECT_EQ(a.cached_tokens, 0);
  // The cache holds the prompt and the 7 fed tokens (the last sampled one was never fed).
  EXPECT_EQ(gen.cached_tokens().size(), f.prompt.size() + 7);

  // A follow-up prompt that extends prompt + 4 generated tokens continues identically and
  // only prefills what the cache does not hold.
  std::vector<int32_t> next = f.prompt;
  next.insert(next.end(), f.greedy.begin(), f.greedy.begin() + 4);
  GenerateResult b = gen.generate(next, greedy_params(4));
  EXPECT_EQ(b.cached_tokens, int64_t(next.size()) - 1);  // at least one token is recomputed
  EXPECT_EQ(b.tokens, std::vector<int32_t>(f.greedy.begin() + 4, f.greedy.end()));

  // A prompt that diverges keeps only the common prefix.
  std::vector<int32_t> other = f.prompt;
  other[10] = 5;
  GenerateResult c = gen.generate(other, greedy_params(1));
  EXPECT_EQ(c.cached_tokens, 10);
  // The same prompt from a fresh generator gives the same token.
  Generator fresh(*f.model, nullptr);
  EXPECT_EQ(fresh.generate(other, greedy_params(1)).tokens, c.tokens);

  gen.reset();
  EXPECT_TRUE(gen.cached_tokens().empty());
  EXPECT_EQ(gen.generate(f.prompt, greedy_params(8)).tokens, f.greedy);
}

TEST(Generator, ContextLimit) {
  Fixture f = load("v3-tiny");
  Generator gen(*f.model, nullptr, /*ctx=*/20);
  EXPECT_EQ(gen.context_limit(), 20);
  GenerateResult r = gen.generate(f.prompt, greedy_params(-1));
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_TRUE(r.context_full);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(f.greedy.begin(), f.greedy.begin() + 4));  // 16 + 4 = 20

  std::vector<int32_t> long_prompt(20, 5);
  try {
    gen.generate(long_prompt, greedy_params(1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt has 20 tokens, context limit is 20"), std::string::npos)
        << e.what();
  }
  Generator big(*f.model, nullptr, /*ctx=*/1 << 20);  // capped at max_position_embeddings
  EXPECT_EQ(big.context_limit(), 1024);
}

TEST(Generator, RejectsBadPrompts) {
  Fixture f = load("v3-tiny");
  Generator gen(*f.model, nullptr);
  EXPECT_THROW(gen.generate(std::vector<int32_t>{}, greedy_params(1)), Error);
  try {
    gen.generate(std::vector<int32_t>{0, 5, 1000}, greedy_params(1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size 1000"), std::string::npos) << e.what();
  }
  GenerateParams p = greedy_params(1);
  p.stop = {"x"};
  EXPECT_THROW(gen.generate(f.prompt, p), Error);  // stop strings need a tokenizer
  p = greedy_params(1);
  p.sampling.top_p = 2.0f;
  EXPECT_THROW(gen.generate(f.prompt, p), Error);
}

TEST(Generator, StopsOnEosAndCancel) {
  Fixture f = load("v3-tiny");
  Generator gen(*f.model, nullptr);
  EXPECT_TRUE(gen.is_eos(1));  // config eos_token_id
  EXPECT_FALSE(gen.is_eos(809));

  // Cancellation is polled before every forward: cancelling in the 3rd token's callback
  // ends generation with 3 tokens.
  std::atomic<bool> cancel{false};
  GenerateCallbacks cb;
  int seen = 0;
  cb.on_token = [&](int32_t) {
    if (++seen == 3) cancel = true;
  };
  GenerateResult r = gen.generate(f.prompt, greedy_params(8), cb, &cancel);
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_EQ(r.tokens, std::vector<int32_t>(f.greedy.begin(), f.greedy.begin() + 3));

  // Cancelled before the prompt was processed: nothing generated, nothing cached.
  gen.reset();
  GenerateResult c = gen.generate(f.prompt, greedy_params(8), {}, &cancel);
  EXPECT_EQ(c.finish_reason, "cancelled");
  EXPECT_TRUE(c.tokens.empty());

  GenerateResult z = gen.generate(f.prompt, greedy_params(0));
  EXPECT_EQ(z.finish_reason, "length");
  EXPECT_TRUE(z.tokens.empty());
}

TEST(Generator, SeededSamplingIsReproducible) {
  Fixture f = load("v2-lite-tiny");
  GenerateParams p;
  p.max_new_tokens = 12;
  p.precise = true;
  p.sampling.temperature = 1.0f;
  p.sampling.top_p = 0.9f;
  p.sampling.repetition_penalty = 1.1f;
  p.sampling.seed = 77;
  p.top_logprobs = 2;
  Generator a(*f.model, nullptr), b(*f.model, nullptr);
  GenerateResult ra = a.generate(f.prompt, p), rb = b.generate(f.prompt, p);
  EXPECT_EQ(ra.tokens, rb.tokens);
  ASSERT_EQ(ra.logprobs.size(), ra.tokens.size());
  for (size_t i = 0; i < ra.tokens.size(); ++i) {
    EXPECT_EQ(ra.logprobs[i].chosen.id, ra.tokens[i]);
    EXPECT_LE(ra.logprobs[i].chosen.logprob, 0.0f);
    ASSERT_EQ(ra.logprobs[i].top.size(), 2u);
    EXPECT_GE(ra.logprobs[i].top[0].logprob, ra.logprobs[i].top[1].logprob);
  }
  p.sampling.seed = 78;
  GenerateResult rc = a.generate(f.prompt, p);
  EXPECT_NE(ra.tokens, rc.tokens);
}

// With the DeepSeek-V3 tokenizer: the tiny models' ids (< 1000) are real tokens, so the text
// path (stream decoding, stop strings) runs on real text.
TEST(Generator, TextAndStopStrings) {
  Fixture f = load("v3-tiny");
  const auto tok =
      tokenizer::Tokenizer::load(std::string(SEEK_FIXTURES) + "/tokenizer/deepseek-v3");
  Generator gen(*f.model, &tok);
  EXPECT_TRUE(gen.is_eos(tok.eos_id()));
  std::string streamed;
  GenerateCallbacks cb;
  cb.on_text = [&](std::string_view t, bool reasoning) {
    EXPECT_FALSE(reasoning);
    streamed += t;
  };
  GenerateResult r = gen.generate(f.prompt, greedy_params(8), cb);
  ASSERT_EQ(r.tokens, f.greedy);
  const std::string full = tok.decode(f.greedy, true);
  EXPECT_EQ(r.text, full);
  EXPECT_EQ(streamed, full);
  ASSERT_GT(full.size(), 6u);

  // A stop string from the middle of that text cuts it there, and is not emitted.
  const size_t cut = full.size() / 2;
  GenerateParams p = greedy_params(8);
  p.stop = {full.substr(cut, 3)};
  const size_t first = full.find(p.stop[0]);
  streamed.clear();
  GenerateResult s = gen.generate(f.prompt, p, cb);
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_EQ(s.stop_string, p.stop[0]);
  EXPECT_EQ(s.text, full.substr(0, first));
  EXPECT_EQ(streamed, s.text);
  EXPECT_LT(s.tokens.size(), f.greedy.size());

  // A prompt that opened <think>: everything up to </think> is reasoning.
  p = greedy_params(8);
  p.starts_in_thinking = true;
  std::string reasoning;
  GenerateCallbacks rcb;
  rcb.on_text = [&](std::string_view t, bool is_reasoning) {
    EXPECT_TRUE(is_reasoning);
    reasoning += t;
  };
  GenerateResult t = gen.generate(f.prompt, p, rcb);
  EXPECT_TRUE(t.text.empty());
  EXPECT_EQ(t.reasoning, reasoning);
  EXPECT_NE(full.find(t.reasoning), std::string::npos);  // only newlines at the ends trimmed
  EXPECT_GE(t.reasoning.size() + 2, full.size());
}

}  // namespace
}  // namespace seek::generate
