// The continuous-batching engine: many requests share each forward call.
//
//   submit() ─▶ bounded queue ─▶ admit into a KV slot (reusing a cached prefix) ─▶ active set
//   every step: one flattened batch = 1 decode token per decoding sequence
//                                     + prefill chunks of admitted prompts (token budget)
//               model::forward ─▶ per sequence: logits processor ─▶ Sampler ─▶ text pipeline
//               ─▶ callbacks; finished / cancelled / expired sequences leave, queued ones join.
//
// Memory: the KV cache is one model::KVCache with a fixed number of slots of `context`
// positions each, sized by an explicit byte budget. A slot whose sequence finished keeps its
// tokens: a later prompt sharing a prefix with it (a chat's next turn, a common system prompt)
// re-uses those positions instead of recomputing them, and idle slots are reclaimed least
// recently used first. A prefix held by a busy slot is copied row by row into the new slot.
//
// Text path per token: TextPipeline (StreamDecoder → StopMatcher → ReasoningSplitter for
// reasoning requests) → on_text. Every callback runs on the engine thread and must not block
// (the server's callbacks only push into a per-request channel; `seek run` prints).
//
// One engine serves every caller: `seek serve` (many sequences), `seek run` / `seek chat` (one
// sequence, max_seqs = 1, its slot's prefix cache carrying a chat from turn to turn) and
// bench/tests. The engine holds no model math and no HTTP: it schedules, samples and streams.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"
#include "generate/sampler.h"
#include "generate/text_pipeline.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tokenizer/fwd.h"

namespace seek::generate {

// Per-request hook between the logits and the sampler: masks or edits the logits of each
// output position (−inf forbids a token). JSON-constrained output, forced tool calls and test
// scripts are logits processors. Called on the engine thread only.
class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  // Output position `n` (0 = first generated token): edit `logits` [vocab] in place.
  virtual void process(std::span<float> logits, int64_t n) = 0;
  // The token chosen at that position.
  virtual void accept(int32_t id) {}
  // True once the output is complete (e.g. a whole JSON value): generation stops ("stop").
  virtual bool done() const { return false; }
  // False: the processor only sees the answer; tokens inside <think> … </think> are free.
  virtual bool constrains_reasoning() const { return true; }
};

// Forces a fixed token sequence, then (if `eos` >= 0) the EOS token. Deterministic outputs from
// random-weight test models: every other token gets −inf, so sampling settings do not matter.
class ScriptedLogits final : public LogitsProcessor {
 public:
  explicit ScriptedLogits(std::vector<int32_t> script, int32_t eos = -1)
      : script_(std::move(script)), eos_(eos) {}
  void process(std::span<float> logits, int64_t n) override;

 private:
  std::vector<int32_t> script_;
  int32_t eos_;
};

struct EngineRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = -1;            // answer tokens (all tokens without reasoning); < 0: no cap
  int64_t max_reasoning_tokens = -1;  // thinking tokens before </think> is forced; < 0: no cap
  int64_t max_total_tokens = -1;      // every generated token, thinking included; < 0: no cap
  std::vector<std::string> stop;      // stop strings, excluded from the text
  bool reasoning = false;             // split <think> … </think> into reasoning text
  bool starts_in_thinking = false;    // the prompt already opened <think>
  bool ignore_eos = false;
  int top_logprobs = -1;  // >= 0: logprobs of each sampled token and this many alternatives
  std::shared_ptr<LogitsProcessor> processor;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Polled with RequestHandle::cancel() before every forward call (`seek run`'s Ctrl-C flag).
  const std::atomic<bool>* cancel = nullptr;
};

struct TokenEvent {
  int32_t id = 0;
  bool reasoning = false;                  // produced while the model was thinking
  const SampleLogprobs* logprobs = nullptr;  // when top_logprobs >= 0
};

struct EngineResult {
  FinishReason finish = FinishReason::Stop;
  std::string error;        // Error / Timeout details
  std::string text;         // answer (stop string and reasoning excluded)
  std::string reasoning;    // thinking text
  std::string stop_string;  // the stop string that fired, if one did
  std::vector<int32_t> tokens;  // every sampled id (EOS included when it ended generation)
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt positions whose KV came from the prefix cache
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t decode_steps = 0;    // decoding forwards (completion_tokens - 1 unless cut short or
                               // speculative: then fewer)
  int64_t drafted_tokens = 0;   // speculative decoding: MTP drafts verified
  int64_t accepted_tokens = 0;  // ... and accepted (each saved one forward)
  // ... by the draft's place in its step (0: the first draft after the newest token).
  std::vector<int64_t> drafted_at, accepted_at;
  bool context_full = false;   // Length because the context was full
  double queue_seconds = 0.0;  // submit → admitted
  double prefill_seconds = 0.0;  // admitted → the prompt's last forward done (or the end)
  double decode_seconds = 0.0;   // the prompt's last forward done → done
  double ttft_seconds = 0.0;   // submit → first token (0 if none)
  double total_seconds = 0.0;  // submit → done
};

// Callbacks of one request, all on the engine thread. on_done is called exactly once (also for
// requests that never left the queue); nothing is called after it.
struct EngineCallbacks {
  std::function<void()> on_start;  // admitted into a slot: prefill begins
  std::function<void(std::string_view text, bool reasoning)> on_text;
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(const EngineResult&)> on_done;
};

// The caller's grip on a submitted request.
class RequestHandle {
 public:
  void cancel();
  bool cancelled() const {
    return cancelled_.load(std::memory_order_relaxed) ||
           (external_ && external_->load(std::memory_order_relaxed));
  }

 private:
  friend class Engine;
  std::atomic<bool> cancelled_{false};
  const std::atomic<bool>* external_ = nullptr;  // EngineRequest::cancel
  std::function<void()> wake_;
};

// Thrown by submit() when the request cannot be queued (the server answers 429 / 503).
struct EngineBusy : Error {
  enum class Why { QueueFull, ShuttingDown } why;
  EngineBusy(Why w, const std::string& msg) : Error(msg), why(w) {}
};

struct EngineOptions {
  int max_seqs = 16;            // sequences decoded together (active slots)
  int cache_slots = 4;          // extra slots that only keep finished prefixes for re-use
  int64_t context = 0;          // positions per slot (prompt + output); <= 0: the model's max
  int64_t kv_budget_bytes = int64_t(4) << 30;  // bounds n_slots · context · bytes/position
  int max_queue = 256;          // waiting requests beyond this are refused (EngineBusy)
  int64_t prefill_chunk = 512;  // prompt tokens of one sequence per step
  int64_t max_batch_tokens = 2048;  // tokens per forward call (decode tokens count first)
  // Activations are BF16 (bf16 dot products: twice the fp32 rate once a batch is compute-bound,
  // and fewer instructions per weight in decode, which FP8 weights need to keep up with memory)
  // unless `precise`; then every product is F32 and a sequence's tokens do not depend on what
  // else shares its batches (tests rely on this). The same for a lone sequence and a batch.
  bool precise = false;
  // Speculative decoding with the checkpoint's MTP module as the draft model (DeepSeek-V3 §2.2,
  // §5.4.3): a decoding sequence feeds its newest token together with up to `spec_tokens`
  // tokens the MTP module drafted, and each accepted draft saves a forward. The first draft
  // comes from the main model's hidden state, each further one from the MTP module's own output
  // at the previous draft (chained, as vLLM drafts V3). Exact: greedy output is token for token
  // the same as without, sampled output has the same distribution (rejection sampling, draft by
  // draft). Requests with logits processors (JSON mode, forced tools), penalties or logprobs
  // decode without drafts. Needs num_nextn_predict_layers >= 1.
  bool speculative = false;
  int spec_tokens = 3;  // drafts per step at most (k), 1..8
  // Adaptive k: after 16 verified first drafts, each sequence drafts the k (0..spec_tokens)
  // that maximises tokens per second, E(k) / C(k), with E(k) = 1 + a1 + a1·a2 + … from its
  // acceptance rate a_j at each draft position and C(k) = c(k) + k·m from the engine's measured
  // costs of a step verifying k drafts (c(0): a plain step) and of an MTP pass m (from steps of
  // one sequence alone; for MoE models c(k) also reads the drafts' own experts). k = 0, or a
  // first-draft acceptance below spec_min_accept, ends drafting for the sequence.
  double spec_min_accept = 0.3;
  bool spec_adaptive = true;  // false: every eligible sequence drafts spec_tokens always (tests, benchmarks)
};

struct EngineStats {
  int queued = 0;
  int active = 0;
  int slots = 0;
  int max_seqs = 0;
  int max_queue = 0;
  int64_t context = 0;
  int64_t kv_bytes = 0;  // the cache's reserved size
  uint64_t steps = 0;    // forward calls so far
  uint64_t batched_tokens = 0;  // tokens over all forward calls
  uint64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding, all requests
};

class Engine {
 public:
  // `tok` may be null (raw ids: no text, no stop strings). Starts the engine thread.
  Engine(const model::Model& model, const tokenizer::Tokenizer* tok, const EngineOptions& opts = {});
  ~Engine();  // stops: everything still queued or running ends with FinishReason::Shutdown
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. Throws seek::Error for an invalid one (empty prompt, a prompt that leaves
  // no room in the context, ids outside the vocabulary, bad sampling values, stop strings
  // without a tokenizer) and EngineBusy when the queue is full or the engine is stopping.
  std::shared_ptr<RequestHandle> submit(EngineRequest req, EngineCallbacks cb);
  // submit() and wait for the result (`seek run`, `seek chat`, tests). Throws what submit()
  // throws; a failed forward comes back as FinishReason::Error.
  EngineResult generate(EngineRequest req, EngineCallbacks cb = {});
  // Forget every idle slot's cached prefix (`seek chat`'s /reset); takes effect before the next
  // admission.
  void forget_prefixes();

  // Refuse new requests from now on; running and queued ones continue.
  void stop_accepting();
  // Blocks until nothing is queued or running, or `timeout` passes. True if idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Tests: hold the engine so queue states can be set up without racing it. After pause()
  // returns no new step starts (one already running completes) and nothing leaves the queue;
  // resume() continues. Safe from any thread, callbacks included.
  void pause();
  void resume();

  EngineStats stats() const;
  int64_t context() const { return context_; }
  const model::Model& model() const { return model_; }
  const tokenizer::Tokenizer* tokenizer() const { return tok_; }
  bool is_eos(int32_t id) const;

 private:
  struct Seq;
  struct Slot {
    std::vector<int32_t> tokens;  // the tokens whose KV rows the slot holds (length() of them)
    bool busy = false;
    uint64_t last_use = 0;
    int64_t mtp_rows = 0;  // leading positions whose MTP-layer rows are valid (speculative)
  };

  void loop();
  void admit(std::vector<std::unique_ptr<Seq>>& admitted);
  void step();
  int take_slot(const std::vector<int32_t>& prompt, int64_t& reused, bool spec);
  void copy_prefix(int src, int dst, int64_t n);
  void sample(Seq& s, std::span<float> logits);
  void push_token(Seq& s, int32_t id, const SampleLogprobs* lp);
  void verify_drafts(Seq& s, std::span<float> logits, int64_t V);
  int best_draft_count(const Seq& s) const;
  double verify_cost(int k) const;
  void draft(const model::Batch& batch, const std::vector<Seq*>& members,
             const std::vector<int64_t>& row_offset, const std::vector<float>& hidden);
  void finish(Seq& s, FinishReason why, std::string error = {});
  void set_flag(bool& flag, bool value);  // under mu_

  const model::Model& model_;
  const tokenizer::Tokenizer* tok_;
  EngineOptions opts_;
  int64_t context_ = 0;
  int n_slots_ = 0;
  std::unique_ptr<model::KVCache> cache_;
  std::vector<Slot> slots_;
  std::vector<int32_t> eos_;          // eos_ids(): sorted
  std::vector<int32_t> think_close_;  // "\n</think>\n\n": forced when the thinking budget ends
  uint64_t use_clock_ = 0;
  int threads_ = 1;  // the constructing thread's OpenMP thread count (--threads)

  // Engine-thread state.
  std::vector<std::unique_ptr<Seq>> active_;
  std::vector<float> logits_;
  std::vector<float> hidden_, draft_logits_, draft_hidden_;  // speculative: last hidden states,
                                                            // MTP logits and MTP hidden states
  bool spec_ = false;                         // opts_.speculative on a model with MTP
  struct Cost {  // running mean of a duration (seconds) over about the last 16 samples
    double mean = 0.0;
    int64_t n = 0;
    void add(double x) { mean = n++ == 0 ? x : mean + (x - mean) / double(std::min<int64_t>(n, 16)); }
  };
  // Speculative: a plain step c(0), steps verifying k drafts c(k) ([k], k >= 1) and an MTP pass
  // m, from steps of one sequence alone.
  Cost cost_step_, cost_draft_;
  std::vector<Cost> cost_verify_;

  // Shared with submitters.
  mutable std::mutex mu_;
  std::condition_variable cv_;       // work arrived / stop
  std::condition_variable idle_cv_;  // queue and active set drained
  std::deque<std::unique_ptr<Seq>> queue_;
  int n_active_ = 0;  // mirror of active_.size() for stats()
  bool accepting_ = true;
  bool stop_ = false;
  bool forget_ = false;  // forget_prefixes() was called
  bool paused_ = false;
  uint64_t steps_ = 0, batched_tokens_ = 0, drafted_ = 0, accepted_ = 0;
  std::thread thread_;
};

}  // namespace seek::generate
