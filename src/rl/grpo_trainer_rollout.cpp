#include "rl/grpo_trainer_rollout.h"

#include <condition_variable>
#include <limits>
#include <mutex>
#include <numeric>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace seek::rl {

uint64_t seed_mix(uint64_t a, uint64_t b) {
  auto split = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  return split(a ^ split(b));
}

TaskSource::TaskSource(const std::string& task) : countdown_(task == "countdown") {
  if (!countdown_) tasks_ = load_tasks(task);
}

std::vector<EvalTask> TaskSource::step_tasks(uint64_t seed, int64_t step, int64_t n) const {
  if (countdown_) return countdown_tasks(seed_mix(seed, uint64_t(step)), n, CountdownSplit::Train);
  // Record k of the run (k = step·n + j) is record perm_e[k mod N] of epoch e = k / N: every
  // record once per epoch, in an order that is a hash of (seed, epoch) (a Fisher–Yates shuffle
  // driven by seed_mix, the same on every platform, unlike std::shuffle).
  const int64_t N = int64_t(tasks_.size());
  std::vector<EvalTask> out;
  int64_t epoch = -1;
  std::vector<int64_t> perm(static_cast<size_t>(N));
  for (int64_t j = 0; j < n; ++j) {
    const int64_t k = step * n + j;
    if (k / N != epoch) {
      epoch = k / N;
      std::iota(perm.begin(), perm.end(), int64_t(0));
      for (int64_t i = N - 1; i > 0; --i) {
        const uint64_t r = seed_mix(seed_mix(seed, uint64_t(epoch) + 0x1000), uint64_t(i));
        std::swap(perm[size_t(i)], perm[size_t(r % uint64_t(i + 1))]);
      }
    }
    out.push_back(tasks_[size_t(perm[size_t(k % N)])]);
  }
  return out;
}

std::vector<EvalTask> TaskSource::eval_tasks(uint64_t seed, int64_t n) const {
  if (countdown_) return countdown_tasks(seed, n, CountdownSplit::Eval);
  return {tasks_.begin(), tasks_.begin() + std::min<ptrdiff_t>(ptrdiff_t(n), ptrdiff_t(tasks_.size()))};
}

namespace {

// Results handed back by the engine thread; shared so a request still running when rollout()
// unwinds (an error) never writes into a dead frame.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<generate::EngineResult> results;
  std::vector<uint8_t> leader_ready;  // per prompt: its first completion has a token (or ended)
  size_t ready = 0, done = 0;
};

}  // namespace

std::vector<Completion> rollout(const model::Model& model, const tokenizer::Tokenizer* tok,
                                std::span<const ChatPrompt> prompts, const RolloutOptions& opt) {
  opt.sampling.validate();
  const size_t P = prompts.size(), G = size_t(opt.group), total = P * G;
  int64_t longest = 0;
  for (const ChatPrompt& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.ids.size()));
  const int64_t context = longest + opt.max_tokens;
  if (context > model.config().max_position_embeddings)
    fail("a prompt of {} tokens plus max_tokens {} exceeds the model's context of {} positions",
         longest, opt.max_tokens, model.config().max_position_embeddings);

  generate::EngineOptions eo;
  eo.max_seqs = int(total);   // every completion in one batch
  eo.max_queue = int(total);
  eo.cache_slots = 0;         // a fresh engine per step: no prefix from older weights survives
  eo.context = context;
  // The KV cache commits memory only as positions are written (as for `seek run`).
  eo.kv_budget_bytes = std::numeric_limits<int64_t>::max();
  eo.precise = opt.precise;
  generate::Engine engine(model, tok, eo);

  auto inbox = std::make_shared<Inbox>();
  inbox->results.resize(total);
  inbox->leader_ready.assign(P, 0);
  // Completion 0 of every prompt (the leader) goes first; once each leader holds its prompt's
  // KV rows (its first token is out), the engine pauses from the callback and the other G − 1
  // join, copying those rows instead of prefilling the prompt again (Engine::take_slot). Both
  // hand-overs happen at fixed steps, whatever the threads' timing, so the schedule (and with it
  // every BF16 rounding) is the same on every run.
  auto leader_ready = [inbox, &engine, P](size_t p) {  // engine thread
    std::lock_guard lock(inbox->mu);
    if (inbox->leader_ready[p]) return;
    inbox->leader_ready[p] = 1;
    if (++inbox->ready == P) {
      engine.pause();
      inbox->cv.notify_one();
    }
  };
  std::vector<std::shared_ptr<generate::RequestHandle>> handles;
  auto submit = [&](size_t i) {
    const size_t p = i / G;
    generate::EngineRequest req;
    req.prompt = prompts[p].ids;
    req.starts_in_thinking = prompts[p].starts_in_thinking;
    req.sampling = opt.sampling;
    req.sampling.seed = seed_mix(seed_mix(opt.sampling.seed, p), i % G);
    req.max_total_tokens = opt.max_tokens;
    generate::EngineCallbacks cb;
    const bool leader = i % G == 0;
    if (leader) cb.on_token = [leader_ready, p](const generate::TokenEvent&) { leader_ready(p); };
    cb.on_done = [inbox, i, leader, p, leader_ready](const generate::EngineResult& r) {
      if (leader) leader_ready(p);
      std::lock_guard lock(inbox->mu);
      inbox->results[i] = r;
      ++inbox->done;
      inbox->cv.notify_one();
    };
    handles.push_back(engine.submit(std::move(req), std::move(cb)));
  };
  try {
    engine.pause();  // the leaders are admitted together, whatever the timing
    for (size_t p = 0; p < P; ++p) submit(p * G);
    engine.resume();
    {
      std::unique_lock lock(inbox->mu);
      inbox->cv.wait(lock, [&] { return inbox->ready == P; });
    }
    // Paused by the last leader's callback: the followers are admitted in one step.
    for (size_t i = 0; i < total; ++i)
      if (i % G != 0) submit(i);
  } catch (...) {
    for (auto& h : handles) h->cancel();
    engine.resume();
    throw;
  }
  engine.resume();
  {
    std::unique_lock lock(inbox->mu);
    inbox->cv.wait(lock, [&] { return inbox->done == total; });
  }
  std::vector<Completion> out(total);
  for (size_t i = 0; i < total; ++i) {
    const generate::EngineResult& r = inbox->results[i];
    if (r.finish == generate::FinishReason::Error || r.finish == generate::FinishReason::Timeout ||
        r.finish == generate::FinishReason::Shutdown ||
        r.finish == generate::FinishReason::Cancelled)
      fail("rollout of prompt {} failed ({}){}", i / G, generate::finish_reason_name(r.finish),
           r.error.empty() ? "" : ": " + r.error);
    if (r.tokens.empty()) fail("rollout of prompt {} produced no token", i / G);
    Completion& c = out[i];
    c.prompt = i / G;
    c.tokens = r.tokens;
    if (tok)
      c.text = (prompts[c.prompt].starts_in_thinking ? "<think>\n" : "") +
               tok->decode(r.tokens, /*skip_special_tokens=*/true);
    c.finish = r.finish;
    c.cached_tokens = r.cached_tokens;
  }
  return out;
}

}  // namespace seek::rl
