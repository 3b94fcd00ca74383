// The continuous-batching engine against the single-sequence reference loop (reference_loop.h):
// the same tokens whatever else shares the batches, prefix-cache re-use that changes nothing but
// the work done, and the request lifecycle (stop, length, cancel, deadline, queue bound).
#include "generate/engine.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "generate/reference_loop.h"
#include "test_model.h"

namespace seek::generate {
namespace {

using namespace std::chrono_literals;
using test::test_model;
using test::test_tokenizer;

struct Outcome {
  EngineResult result;
  std::string text, reasoning;  // as streamed
  std::vector<TokenEvent> tokens;
  bool started = false;
};

// Submits and returns a future of the whole run.
std::future<Outcome> start(Engine& e, EngineRequest req, std::shared_ptr<RequestHandle>* h = nullptr) {
  auto run = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<Outcome>>();
  EngineCallbacks cb;
  cb.on_start = [run] { run->started = true; };
  cb.on_text = [run](std::string_view t, bool reasoning) {
    (reasoning ? run->reasoning : run->text).append(t);
  };
  cb.on_token = [run](const TokenEvent& ev) { run->tokens.push_back({ev.id, ev.reasoning, nullptr}); };
  cb.on_done = [run, done](const EngineResult& r) {
    run->result = r;
    done->set_value(*run);
  };
  auto handle = e.submit(std::move(req), std::move(cb));
  if (h) *h = handle;
  return done->get_future();
}

Outcome run(Engine& e, EngineRequest req) { return start(e, std::move(req)).get(); }

EngineRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.max_tokens = max_tokens;
  return r;
}

std::vector<int32_t> reference(std::span<const int32_t> prompt, int64_t max_tokens) {
  ReferenceLoop g(test_model(), &test_tokenizer(), 1024);
  ReferenceParams p;
  p.sampling.temperature = 0.0f;
  p.max_new_tokens = max_tokens;
  p.precise = true;
  return g.generate(prompt, p).tokens;
}

std::vector<int32_t> prompt_of(int seed, int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t(100 + (seed * 7919 + i * 104729) % 120000));
  return p;
}

// Pauses the engine from the engine thread when output position `at` is sampled, so a test can
// act while this request is certainly still running (no polling, no race with its end).
class PauseAt final : public LogitsProcessor {
 public:
  PauseAt(Engine& e, int64_t at) : e_(e), at_(at) {}
  void process(std::span<float>, int64_t n) override {
    if (n != at_) return;
    e_.pause();
    reached_.set_value();
  }
  // Blocks until the engine is paused there.
  void wait() { reached_.get_future().get(); }

 private:
  Engine& e_;
  int64_t at_;
  std::promise<void> reached_;
};

// `req` pausing the engine at output position `at`; the returned hook waits for it.
std::shared_ptr<PauseAt> pause_at(Engine& e, EngineRequest& req, int64_t at) {
  auto p = std::make_shared<PauseAt>(e, at);
  req.processor = p;
  return p;
}

EngineOptions precise_opts() {
  EngineOptions o;
  o.precise = true;
  o.context = 1024;
  o.max_seqs = 8;
  o.cache_slots = 2;
  return o;
}

TEST(Engine, SingleRequestMatchesReferenceLoop) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  const auto prompt = prompt_of(1, 20);
  const Outcome r = run(e, greedy(prompt, 12));
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.result.finish, FinishReason::Length);
  EXPECT_EQ(r.result.tokens, reference(prompt, 12));
  EXPECT_EQ(r.result.prompt_tokens, 20);
  EXPECT_EQ(r.result.completion_tokens, 12);
  EXPECT_EQ(r.result.cached_tokens, 0);
  EXPECT_EQ(r.text, r.result.text);
  EXPECT_GT(r.result.ttft_seconds, 0.0);
}

TEST(Engine, ConcurrentRequestsShareStepsAndMatchAlone) {
  EngineOptions o = precise_opts();
  o.prefill_chunk = 7;  // several chunks per prompt, interleaved with other streams' decoding
  Engine e(test_model(), &test_tokenizer(), o);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::future<Outcome>> runs;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(prompt_of(10 + i, 5 + 6 * i));
    runs.push_back(start(e, greedy(prompts.back(), 10 + i)));
  }
  int64_t total = 0;
  for (int i = 0; i < 6; ++i) {
    const Outcome r = runs[size_t(i)].get();
    EXPECT_EQ(r.result.tokens, reference(prompts[size_t(i)], 10 + i)) << "request " << i;
    total += r.result.completion_tokens;
  }
  // One forward call per step serves every active sequence: far fewer steps than tokens.
  EXPECT_LT(e.stats().steps, uint64_t(total));
  EXPECT_TRUE(e.wait_idle(1s));
  EXPECT_EQ(e.stats().active, 0);
}

TEST(Engine, PrefixCacheReusesAFinishedSequence) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  const auto a = prompt_of(3, 40);
  run(e, greedy(a, 4));
  auto b = a;
  b.push_back(7);
  b.push_back(8);
  const Outcome r = run(e, greedy(b, 8));
  EXPECT_EQ(r.result.cached_tokens, 40);
  EXPECT_EQ(r.result.tokens, reference(b, 8));
  // The same prompt again: all but the last token come from the cache.
  const Outcome again = run(e, greedy(b, 8));
  EXPECT_EQ(again.result.cached_tokens, int64_t(b.size()) - 1);
  EXPECT_EQ(again.result.tokens, r.result.tokens);
}

TEST(Engine, PrefixCopiedFromABusySlot) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  const auto shared = prompt_of(5, 30);
  std::shared_ptr<RequestHandle> h;
  EngineRequest first = greedy(shared, 400);
  auto paused = pause_at(e, first, 2);
  auto long_run = start(e, std::move(first), &h);
  // The first request is decoding (its prompt is in the cache) and stays busy: it has 397
  // tokens to go when the second joins at the next step.
  paused->wait();
  auto b = shared;
  b.push_back(42);
  auto second = start(e, greedy(b, 6));
  e.resume();
  const Outcome r = second.get();
  EXPECT_EQ(r.result.cached_tokens, 30);
  EXPECT_EQ(r.result.tokens, reference(b, 6));
  h->cancel();
  EXPECT_EQ(long_run.get().result.finish, FinishReason::Cancelled);
}

// A scripted output: the model is forced to write `text`, then EOS.
EngineRequest scripted(const std::string& text, bool reasoning) {
  const auto& tok = test_tokenizer();
  EngineRequest r;
  r.prompt = tok.encode("<｜User｜>hi<｜Assistant｜>", true);
  r.reasoning = reasoning;
  r.processor = std::make_shared<ScriptedLogits>(tok.encode(text, false), tok.eos_id());
  return r;
}

TEST(Engine, ReasoningIsSplitFromTheAnswer) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  const Outcome r = run(e, scripted("<think>\nI think, so\n</think>\n\nHello there.", true));
  EXPECT_EQ(r.result.finish, FinishReason::Stop);
  EXPECT_EQ(r.result.reasoning, "I think, so");
  EXPECT_EQ(r.result.text, "Hello there.");
  EXPECT_EQ(r.reasoning, "I think, so");
  EXPECT_EQ(r.text, "Hello there.");
  const auto& tok = test_tokenizer();
  const int64_t answer = int64_t(tok.encode("\n\nHello there.", false).size());
  EXPECT_EQ(r.result.completion_tokens, int64_t(tok.encode("<think>\nI think, so\n</think>\n\nHello there.", false).size()) + 1);
  EXPECT_GT(r.result.reasoning_tokens, 0);
  EXPECT_LE(r.result.completion_tokens - r.result.reasoning_tokens, answer + 1);
  // Token events know which phase they belong to.
  ASSERT_FALSE(r.tokens.empty());
  EXPECT_TRUE(r.tokens.front().reasoning);
  EXPECT_FALSE(r.tokens.back().reasoning);
}

TEST(Engine, WithoutReasoningTagsAreText) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  const Outcome r = run(e, scripted("<think>x</think>y", false));
  EXPECT_EQ(r.result.text, "<think>x</think>y");
  EXPECT_EQ(r.result.reasoning, "");
  EXPECT_EQ(r.result.reasoning_tokens, 0);
}

TEST(Engine, StopStringEndsAndIsExcluded) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  EngineRequest req = scripted("Hello world. Bye", false);
  req.stop = {"orl", "zzz"};
  const Outcome r = run(e, req);
  EXPECT_EQ(r.result.finish, FinishReason::Stop);
  EXPECT_EQ(r.result.text, "Hello w");
  EXPECT_EQ(r.text, "Hello w");
  EXPECT_EQ(r.result.stop_string, "orl");
}

TEST(Engine, MaxTokensCountsTheAnswerOnly) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  EngineRequest req = scripted("<think>\nsome long thinking here\n</think>\n\none two three four five six", true);
  req.max_tokens = 2;
  const Outcome r = run(e, req);
  EXPECT_EQ(r.result.finish, FinishReason::Length);
  EXPECT_EQ(r.result.reasoning, "some long thinking here");
  EXPECT_EQ(r.result.completion_tokens - r.result.reasoning_tokens, 2);
  EXPECT_FALSE(r.result.text.empty());
}

TEST(Engine, ThinkingBudgetClosesTheBlock) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  EngineRequest req = greedy(test_tokenizer().encode("<｜User｜>hi<｜Assistant｜><think>\n", true), 5);
  req.reasoning = true;
  req.starts_in_thinking = true;
  req.max_reasoning_tokens = 6;
  req.ignore_eos = true;
  const Outcome r = run(e, req);
  const auto close = test_tokenizer().encode("\n</think>\n\n", false);
  EXPECT_EQ(r.result.reasoning_tokens, 6 + int64_t(close.size()));
  EXPECT_EQ(r.result.completion_tokens, r.result.reasoning_tokens + 5);
  EXPECT_EQ(r.result.finish, FinishReason::Length);
}

TEST(Engine, CancelFreesTheSlot) {
  EngineOptions o = precise_opts();
  o.max_seqs = 1;
  o.cache_slots = 0;
  Engine e(test_model(), &test_tokenizer(), o);
  std::shared_ptr<RequestHandle> h;
  EngineRequest req = greedy(prompt_of(8, 10), 100000);
  auto paused = pause_at(e, req, 1);
  auto f = start(e, std::move(req), &h);
  paused->wait();
  h->cancel();
  e.resume();
  const Outcome r = f.get();
  EXPECT_EQ(r.result.finish, FinishReason::Cancelled);
  // The only slot is free again: the next request runs.
  EXPECT_EQ(run(e, greedy(prompt_of(9, 10), 3)).result.completion_tokens, 3);
}

TEST(Engine, QueueBoundAndQueuedCancel) {
  EngineOptions o = precise_opts();
  o.max_seqs = 1;
  o.cache_slots = 0;
  o.max_queue = 2;
  Engine e(test_model(), &test_tokenizer(), o);
  std::shared_ptr<RequestHandle> h0, h1;
  EngineRequest req0 = greedy(prompt_of(1, 8), 100000);
  auto paused = pause_at(e, req0, 1);
  auto f0 = start(e, std::move(req0), &h0);
  paused->wait();  // f0 holds the only slot; nothing leaves the queue until resume()
  EXPECT_EQ(e.stats().active, 1);
  auto f1 = start(e, greedy(prompt_of(2, 8), 5), &h1);
  auto f2 = start(e, greedy(prompt_of(3, 8), 5));
  EXPECT_EQ(e.stats().queued, 2);
  try {
    e.submit(greedy(prompt_of(4, 8), 5), {});
    ADD_FAILURE() << "a full queue must refuse";
  } catch (const EngineBusy& b) {
    EXPECT_EQ(b.why, EngineBusy::Why::QueueFull);
  }
  h1->cancel();  // leaves the queue without running
  h0->cancel();
  e.resume();
  const Outcome r1 = f1.get();
  EXPECT_EQ(r1.result.finish, FinishReason::Cancelled);
  EXPECT_FALSE(r1.started);
  EXPECT_EQ(f0.get().result.finish, FinishReason::Cancelled);
  EXPECT_EQ(f2.get().result.completion_tokens, 5);
}

TEST(Engine, DeadlineEndsARunningRequest) {
  Engine e(test_model(), &test_tokenizer(), precise_opts());
  EngineRequest req = greedy(prompt_of(4, 8), 1000000);
  req.deadline = std::chrono::steady_clock::now() + 150ms;
  const Outcome r = run(e, req);
  EXPECT_EQ(r.result.finish, FinishReason::Timeout);
  EXPECT_FALSE(r.result.error.empty());
}

TEST(Engine, ContextLimitEndsWithLength) {
  EngineOptions o = precise_opts();
  o.context = 32;
  Engine e(test_model(), &test_tokenizer(), o);
  EngineRequest req = greedy(prompt_of(6, 20), -1);
  req.ignore_eos = true;
  const Outcome r = run(e, req);
  EXPECT_EQ(r.result.finish, FinishReason::Length);
  EXPECT_EQ(r.result.prompt_tokens + r.result.completion_tokens, 32);
}

TEST(Engine, InvalidRequestsAreRefused) {
  EngineOptions o = precise_opts();
  o.context = 32;
  Engine e(test_model(), &test_tokenizer(), o);
  EXPECT_THROW(e.submit(greedy({}, 4), {}), Error);
  EXPECT_THROW(e.submit(greedy(prompt_of(1, 32), 4), {}), Error);
  EXPECT_THROW(e.submit(greedy({1, 2, int32_t(test::kTestVocab)}, 4), {}), Error);
  EngineRequest bad = greedy({1, 2}, 4);
  bad.sampling.top_p = 0.0f;
  EXPECT_THROW(e.submit(bad, {}), Error);
}

TEST(Engine, KvBudgetBoundsTheSlots) {
  EngineOptions o = precise_opts();
  const auto& cfg = test_model().config();
  const int64_t per_slot = 1024 * cfg.num_hidden_layers * cfg.kv_values_per_token_per_layer() * 4;
  o.kv_budget_bytes = per_slot * 3 + 1;
  Engine e(test_model(), &test_tokenizer(), o);
  EXPECT_EQ(e.stats().slots, 3);
  EXPECT_EQ(e.stats().max_seqs, 3);
  o.kv_budget_bytes = per_slot - 1;
  EXPECT_THROW(Engine(test_model(), &test_tokenizer(), o), Error);
}

TEST(Engine, ShutdownEndsQueuedAndRunning) {
  std::future<Outcome> a, b;
  {
    EngineOptions o = precise_opts();
    o.max_seqs = 1;
    o.cache_slots = 0;
    Engine e(test_model(), &test_tokenizer(), o);
    EngineRequest ra = greedy(prompt_of(1, 8), 1000000);
    auto paused = pause_at(e, ra, 0);
    a = start(e, std::move(ra));
    b = start(e, greedy(prompt_of(2, 8), 1000000));
    paused->wait();  // a is running, b queued; the engine stops before either can end
  }
  EXPECT_EQ(a.get().result.finish, FinishReason::Shutdown);
  EXPECT_EQ(b.get().result.finish, FinishReason::Shutdown);
}

}  // namespace
}  // namespace seek::generate
