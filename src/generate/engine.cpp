#include "generate/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <optional>
#include <utility>

#include "core/threads.h"
#include "model/mtp.h"
#include "tokenizer/tokenizer.h"

namespace seek::generate {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

void ScriptedLogits::process(std::span<float> logits, int64_t n) {
  int32_t want = -1;
  if (n < int64_t(script_.size())) want = script_[size_t(n)];
  else if (eos_ >= 0) want = eos_;
  if (want < 0 || want >= int32_t(logits.size())) return;
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  logits[size_t(want)] = 0.0f;
}

void RequestHandle::cancel() { cancelled_.store(true, std::memory_order_relaxed); }

// One request from submit() to on_done.
struct Engine::Seq {
  EngineRequest req;
  EngineCallbacks cb;
  std::shared_ptr<RequestHandle> handle;
  Clock::time_point submitted, admitted, prefilled;
  int slot = -1;
  std::vector<int32_t> tokens;  // prompt, then every sampled token
  int64_t n_prompt = 0;
  int64_t n_fed = 0;  // positions of `tokens` whose KV rows are in the slot
  Sampler sampler;
  TokenHistory history;
  std::deque<int32_t> forced;  // tokens that replace sampling (closing a thinking block)
  std::optional<TextPipeline> text;  // only with a tokenizer
  std::vector<TextPiece> pieces;     // scratch: the text of one token
  bool thinking = false;       // still inside the reasoning phase (counts reasoning tokens)
  bool saw_reasoning = false;  // the splitter has been inside <think>
  bool answer_began = false;   // an answer piece has been emitted
  bool closed_thinking = false;  // "</think>" was forced after the thinking budget ran out
  int64_t answer_tokens = 0;
  // Speculative decoding: `drafts` (drawn from the distributions `qs`) are fed after the newest
  // token and verified by the next step. The MTP layer's cache rows run in lockstep with the
  // main ones: positions [0, n_mtp), one behind n_fed until the newest token is known; the
  // rows a chained draft writes beyond them are rewritten once their tokens are settled.
  bool spec = false;
  std::vector<int32_t> drafts;
  std::vector<TokenDist> qs;
  int k = 0;  // drafts to propose per step
  // Acceptance rate of the draft at each position (given the ones before it were accepted):
  // the mean over its first 16 verdicts, then over about the last 16; and how many so far.
  std::vector<double> accept_rate;
  std::vector<int64_t> verdicts;
  int64_t n_mtp = 0;
  bool done = false;
  EngineResult result;

  Seq(EngineRequest r, EngineCallbacks c)
      : req(std::move(r)), cb(std::move(c)), sampler(req.sampling) {}

  void emit() {
    for (const TextPiece& p : pieces) {
      (p.reasoning ? result.reasoning : result.text).append(p.text);
      if (!p.reasoning) answer_began = true;
      if (cb.on_text) cb.on_text(p.text, p.reasoning);
    }
    pieces.clear();
  }
  void text_push(int32_t id) {
    text->push(id, pieces);
    emit();
  }
  void text_finish() {
    if (!text) return;
    text->finish(pieces);
    emit();
  }
};

Engine::Engine(const model::Model& model, const tokenizer::Tokenizer* tok, const EngineOptions& opts)
    : model_(model), tok_(tok), opts_(opts) {
  const model::ModelConfig& cfg = model.config();
  context_ = cfg.max_position_embeddings;
  if (opts_.context > 0) context_ = std::min(context_, opts_.context);
  if (context_ < 2) fail("engine: context {} is too small", context_);
  if (opts_.max_seqs < 1) fail("engine: max_seqs must be >= 1 (got {})", opts_.max_seqs);
  if (opts_.prefill_chunk <= 0) opts_.prefill_chunk = context_;
  spec_ = opts_.speculative;
  if (spec_ && cfg.num_nextn_predict_layers < 1)
    fail("speculative decoding drafts with the model's MTP module, and this model has none "
         "(num_nextn_predict_layers is 0)");
  if (spec_ && (opts_.spec_tokens < 1 || opts_.spec_tokens > 8))
    fail("speculative decoding: spec_tokens must be 1..8 (got {})", opts_.spec_tokens);
  cost_verify_.resize(size_t(std::max(opts_.spec_tokens, 1)) + 1);
  if (spec_ && model.is_stage())
    fail("speculative decoding does not run across pipeline stages yet (the MTP module needs the "
         "last stage's hidden states on the first stage)");
  const int64_t cache_layers = cfg.num_hidden_layers + (spec_ ? 1 : 0);
  // The cache keeps the forwards' precision: BF16 by default (half the bytes), F32 for --precise.
  const DType cache_dtype = opts_.precise ? DType::F32 : DType::BF16;
  const int64_t slot_bytes =
      context_ * cache_layers * cfg.kv_values_per_token_per_layer() * (cache_dtype == DType::BF16 ? 2 : 4);
  const int64_t fit = opts_.kv_budget_bytes / slot_bytes;
  if (fit < 1)
    fail("engine: a KV budget of {} bytes does not hold one sequence of {} positions ({} bytes); "
         "raise the budget or lower the context", opts_.kv_budget_bytes, context_, slot_bytes);
  n_slots_ = int(std::min<int64_t>(fit, int64_t(opts_.max_seqs) + std::max(opts_.cache_slots, 0)));
  opts_.max_seqs = std::min(opts_.max_seqs, n_slots_);
  cache_ = std::make_unique<model::KVCache>(cfg, n_slots_, context_, spec_ ? 1 : 0, cache_dtype);
  slots_.resize(size_t(n_slots_));

  eos_ = eos_ids(cfg, tok_);
  if (tok_) think_close_ = tok_->encode("\n</think>\n\n", false);
  // OpenMP thread counts are per thread: a new thread starts from the process default, not from
  // what --threads set on this one.
  threads_ = max_threads();

  thread_ = std::thread([this] {
    omp_set_num_threads(threads_);
    loop();
  });
}

Engine::~Engine() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    accepting_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::is_eos(int32_t id) const { return std::binary_search(eos_.begin(), eos_.end(), id); }

std::shared_ptr<RequestHandle> Engine::submit(EngineRequest req, EngineCallbacks cb) {
  const int64_t vocab = model_.config().vocab_size;
  const auto n = int64_t(req.prompt.size());
  if (n == 0) fail("empty prompt: nothing to generate from");
  if (n >= context_)
    fail("prompt has {} tokens, context limit is {} (prompt and output must fit together)", n,
         context_);
  for (size_t i = 0; i < req.prompt.size(); ++i)
    if (req.prompt[i] < 0 || req.prompt[i] >= vocab)
      fail("prompt token {} at position {} is outside the model's vocabulary (vocab_size {})",
           req.prompt[i], i, vocab);
  if (!req.stop.empty() && !tok_) fail("stop strings need a tokenizer");
  if (req.reasoning && !tok_) fail("reasoning output needs a tokenizer");
  req.sampling.validate();

  auto s = std::make_unique<Seq>(std::move(req), std::move(cb));
  s->handle = std::make_shared<RequestHandle>();
  s->handle->external_ = s->req.cancel;
  s->submitted = Clock::now();
  s->n_prompt = n;
  s->tokens = s->req.prompt;
  s->result.prompt_tokens = n;
  if (s->req.sampling.has_penalties()) s->history.add_prompt(s->req.prompt);
  if (tok_) s->text.emplace(*tok_, s->req.stop, s->req.reasoning, s->req.starts_in_thinking);
  s->thinking = s->req.reasoning;
  s->spec = spec_ && !s->req.processor && !s->req.sampling.has_penalties() && s->req.top_logprobs < 0;
  if (s->spec) {
    s->k = opts_.spec_tokens;
    s->accept_rate.assign(size_t(s->k), 1.0);
    s->verdicts.assign(size_t(s->k), 0);
  }
  s->saw_reasoning = s->req.reasoning && s->req.starts_in_thinking;
  auto handle = s->handle;
  {
    std::lock_guard lk(mu_);
    if (!accepting_) throw EngineBusy(EngineBusy::Why::ShuttingDown, "the server is shutting down");
    if (int(queue_.size()) >= opts_.max_queue)
      throw EngineBusy(EngineBusy::Why::QueueFull,
                       fmt::format("the request queue is full ({} waiting)", queue_.size()));
    queue_.push_back(std::move(s));
  }
  cv_.notify_all();
  return handle;
}

EngineResult Engine::generate(EngineRequest req, EngineCallbacks cb) {
  // Shared with the callback: the engine thread may still be inside it when get() returns.
  auto done = std::make_shared<std::promise<EngineResult>>();
  std::future<EngineResult> result = done->get_future();
  cb.on_done = [done, user = std::move(cb.on_done)](const EngineResult& r) {
    if (user) user(r);
    done->set_value(r);
  };
  submit(std::move(req), std::move(cb));
  return result.get();
}

// The engine thread reads these flags under mu_ between steps.
void Engine::set_flag(bool& flag, bool value) {
  std::lock_guard lk(mu_);
  flag = value;
}

void Engine::forget_prefixes() { set_flag(forget_, true); }
void Engine::stop_accepting() { set_flag(accepting_, false); }
void Engine::pause() { set_flag(paused_, true); }

void Engine::resume() {
  set_flag(paused_, false);
  cv_.notify_all();
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return idle_cv_.wait_for(lk, timeout, [&] { return queue_.empty() && n_active_ == 0; });
}

EngineStats Engine::stats() const {
  std::lock_guard lk(mu_);
  EngineStats st;
  st.queued = int(queue_.size());
  st.active = n_active_;
  st.slots = n_slots_;
  st.max_seqs = opts_.max_seqs;
  st.max_queue = opts_.max_queue;
  st.context = context_;
  st.kv_bytes = int64_t(n_slots_) * context_ * cache_->bytes_per_token();
  st.steps = steps_;
  st.batched_tokens = batched_tokens_;
  st.drafted_tokens = drafted_;
  st.accepted_tokens = accepted_;
  return st;
}

// ---- the engine thread ----

void Engine::loop() {
  for (;;) {
    std::vector<std::unique_ptr<Seq>> admitted, dropped;
    bool stopping = false;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || (!paused_ && (!queue_.empty() || !active_.empty())); });
      stopping = stop_;
      if (forget_) {
        forget_ = false;
        for (int i = 0; i < n_slots_; ++i)
          if (!slots_[size_t(i)].busy) {
            slots_[size_t(i)].tokens.clear();
            cache_->clear(i);
          }
      }
      if (!stopping) {
        const auto now = Clock::now();
        for (auto it = queue_.begin(); it != queue_.end();) {
          if ((*it)->handle->cancelled() || now >= (*it)->req.deadline) {
            dropped.push_back(std::move(*it));
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
        while (!queue_.empty() && int(active_.size() + admitted.size()) < opts_.max_seqs) {
          admitted.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        // Counted as active from the moment they leave the queue: wait_idle() must not see an
        // empty queue and no active sequences while these are admitted and stepped, or while
        // the dropped ones' callbacks run.
        n_active_ = int(active_.size() + admitted.size() + dropped.size());
      } else {
        for (auto& s : queue_) dropped.push_back(std::move(s));
        queue_.clear();
      }
    }
    for (auto& s : dropped) {
      if (stopping) finish(*s, FinishReason::Shutdown, "the server is shutting down");
      else if (s->handle->cancelled()) finish(*s, FinishReason::Cancelled);
      else finish(*s, FinishReason::Timeout, "the request waited in the queue past its deadline");
    }
    if (stopping) {
      for (auto& s : active_)
        if (!s->done) finish(*s, FinishReason::Shutdown, "the server is shutting down");
      active_.clear();
      std::lock_guard lk(mu_);
      n_active_ = 0;
      idle_cv_.notify_all();
      return;
    }
    admit(admitted);
    if (!active_.empty()) step();
    std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });
    std::lock_guard lk(mu_);
    n_active_ = int(active_.size());
    if (queue_.empty() && active_.empty()) idle_cv_.notify_all();
  }
}

void Engine::admit(std::vector<std::unique_ptr<Seq>>& admitted) {
  const auto now = Clock::now();
  for (auto& s : admitted) {
    int64_t reused = 0;
    s->slot = take_slot(s->req.prompt, reused, s->spec);
    s->n_fed = reused;
    s->n_mtp = reused;
    s->result.cached_tokens = reused;
    s->admitted = now;
    s->result.queue_seconds = seconds_between(s->submitted, now);
    if (s->cb.on_start) s->cb.on_start();
    active_.push_back(std::move(s));
  }
}

// Picks a free slot for `prompt` and how many of its leading positions are already cached.
// The last prompt token is always recomputed: its logits give the first output token.
int Engine::take_slot(const std::vector<int32_t>& prompt, int64_t& reused, bool spec) {
  const size_t max_keep = prompt.size() - 1;
  auto common = [&](const Slot& sl) {
    size_t k = 0;
    const size_t lim = std::min(max_keep, sl.tokens.size());
    while (k < lim && sl.tokens[k] == prompt[k]) ++k;
    return k;
  };
  int best_free = -1, lru_free = -1, best_any = -1;
  size_t best_free_len = 0, best_any_len = 0;
  for (int i = 0; i < n_slots_; ++i) {
    const Slot& sl = slots_[size_t(i)];
    const size_t k = common(sl);
    if (!sl.busy) {
      if (lru_free < 0 || sl.last_use < slots_[size_t(lru_free)].last_use) lru_free = i;
      if (k > best_free_len) best_free = i, best_free_len = k;
    }
    if (k > best_any_len) best_any = i, best_any_len = k;
  }
  if (lru_free < 0) fail("engine: no free KV slot (internal error)");
  int slot = lru_free;
  size_t keep = 0;
  if (best_any_len > best_free_len && best_any >= 0) {
    // Only a busy slot holds this prefix: copy its rows into the least recently used free slot.
    copy_prefix(best_any, slot, int64_t(best_any_len));
    keep = best_any_len;
  } else if (best_free >= 0) {
    slot = best_free;
    keep = best_free_len;
  }
  Slot& sl = slots_[size_t(slot)];
  // MTP row j depends on tokens up to j + 1: those of the common prefix but its last are valid.
  // A drafting sequence recomputes from there, so its MTP rows never lag its main rows.
  sl.mtp_rows = std::min<int64_t>(sl.mtp_rows, std::max<int64_t>(int64_t(keep) - 1, 0));
  if (spec) keep = std::min(keep, size_t(sl.mtp_rows));
  sl.busy = true;
  sl.last_use = ++use_clock_;
  sl.tokens.resize(keep);
  cache_->set_length(slot, int64_t(keep));
  reused = int64_t(keep);
  return slot;
}

void Engine::copy_prefix(int src, int dst, int64_t n) {
  model::copy_cache_prefix(model_, *cache_, src, dst, n);
  slots_[size_t(dst)].tokens.assign(slots_[size_t(src)].tokens.begin(),
                                    slots_[size_t(src)].tokens.begin() + n);
  slots_[size_t(dst)].mtp_rows = std::min(slots_[size_t(src)].mtp_rows, n);
  cache_->set_length(dst, n);
}

void Engine::step() {
  const auto now = Clock::now();
  for (auto& s : active_) {
    if (s->done) continue;
    if (s->handle->cancelled()) finish(*s, FinishReason::Cancelled);
    else if (now >= s->req.deadline)
      finish(*s, FinishReason::Timeout, "the request ran past its deadline");
  }

  // Decode tokens first (one per generating sequence, so streams never stall), then prefill
  // chunks in admission order within what is left of the token budget.
  // A sequence with drafts feeds them after its newest token, with logits for each.
  model::Batch batch;
  std::vector<Seq*> members;
  int64_t n_decode = 0;
  for (auto& s : active_) {
    if (s->done || s->n_fed < s->n_prompt) continue;
    const auto nd = int64_t(s->drafts.size());
    batch.tokens.push_back(s->tokens[size_t(s->n_fed)]);
    batch.tokens.insert(batch.tokens.end(), s->drafts.begin(), s->drafts.end());
    batch.seqs.push_back({.slot = s->slot, .start_pos = s->n_fed, .n_tokens = 1 + nd,
                          .all_logits = nd > 0});
    members.push_back(s.get());
    ++n_decode;
  }
  int64_t budget = std::max<int64_t>(opts_.max_batch_tokens - int64_t(batch.tokens.size()), 1);
  for (auto& s : active_) {
    if (s->done || s->n_fed >= s->n_prompt || budget <= 0) continue;
    const int64_t n = std::min({opts_.prefill_chunk, s->n_prompt - s->n_fed, budget});
    batch.tokens.insert(batch.tokens.end(), s->tokens.begin() + s->n_fed,
                        s->tokens.begin() + s->n_fed + n);
    batch.seqs.push_back({.slot = s->slot, .start_pos = s->n_fed, .n_tokens = n});
    members.push_back(s.get());
    budget -= n;
  }
  if (members.empty()) return;

  model::ForwardOptions fo;
  fo.precision = opts_.precise ? kernels::Precision::F32 : kernels::Precision::BF16;
  if (spec_) fo.last_hidden = &hidden_;
  const auto t_forward = Clock::now();
  try {
    model::forward(model_, *cache_, batch, logits_, fo);
  } catch (const std::exception& e) {
    for (Seq* s : members) {
      slots_[size_t(s->slot)].tokens.clear();  // the rows may be half written
      slots_[size_t(s->slot)].mtp_rows = 0;
      cache_->clear(s->slot);
      finish(*s, FinishReason::Error, e.what());
    }
    return;
  }
  {
    std::lock_guard lk(mu_);
    ++steps_;
    batched_tokens_ += batch.tokens.size();
  }
  // Speculative decoding's costs, from steps of one decoding sequence alone (the regime where
  // drafting pays): a step without drafts c(0) and with k of them c(k).
  if (spec_ && members.size() == 1 && n_decode == 1) {
    const int64_t k = batch.seqs[0].n_tokens - 1;
    (k == 0 ? cost_step_ : cost_verify_[size_t(k)]).add(seconds_between(t_forward, Clock::now()));
  }

  const int64_t V = model_.config().vocab_size;
  std::vector<int64_t> row_offset(members.size());  // each member's first row of hidden_
  int64_t logit_row = 0;
  for (size_t i = 0, t = 0; i < members.size(); ++i) {
    Seq& s = *members[i];
    const model::SeqChunk& sc = batch.seqs[i];
    row_offset[i] = int64_t(t);
    t += size_t(sc.n_tokens);
    std::span<float> logits(logits_.data() + logit_row * V, size_t((sc.all_logits ? sc.n_tokens : 1) * V));
    logit_row += sc.all_logits ? sc.n_tokens : 1;
    if (sc.all_logits) {
      verify_drafts(s, logits, V);
      continue;
    }
    const int64_t n = sc.n_tokens;
    auto& st = slots_[size_t(s.slot)].tokens;
    st.insert(st.end(), s.tokens.begin() + s.n_fed, s.tokens.begin() + s.n_fed + n);
    if (int64_t(i) < n_decode) ++s.result.decode_steps;
    s.n_fed += n;
    if (s.n_fed == s.n_prompt) {
      s.prefilled = Clock::now();
      s.result.prefill_seconds = seconds_between(s.admitted, s.prefilled);
    }
    if (s.n_fed == int64_t(s.tokens.size()))  // prompt complete, or a decode step
      sample(s, logits);
  }
  if (spec_) draft(batch, members, row_offset, hidden_);
}

// The newest token (position n_fed) and the drafts after it went through the model: row j of
// `logits` decides the token after the j-th fed token, by verify() against draft j's
// distribution; the first rejection ends the step with the token verify() drew in its place,
// and when every draft is accepted the last row samples the token after them.
void Engine::verify_drafts(Seq& s, std::span<float> logits, int64_t V) {
  EngineResult& r = s.result;
  auto& st = slots_[size_t(s.slot)].tokens;
  st.push_back(s.tokens[size_t(s.n_fed)]);
  ++s.n_fed;
  ++r.decode_steps;
  const std::vector<int32_t> drafts = std::exchange(s.drafts, {});
  const auto nd = int64_t(drafts.size());
  auto row = [&](int64_t j) { return logits.subspan(size_t(j * V), size_t(V)); };
  TokenDist p;
  int64_t next_row = -1;  // samples the token after the accepted drafts
  for (int64_t j = 0; j < nd; ++j) {
    bool accepted = false;
    s.sampler.distribution(row(j), p);
    const int32_t id = s.sampler.verify(p, s.qs[size_t(j)], drafts[size_t(j)], V, accepted);
    ++r.drafted_tokens;
    if (accepted) ++r.accepted_tokens;
    if (r.drafted_at.size() < size_t(nd)) r.drafted_at.resize(size_t(nd)), r.accepted_at.resize(size_t(nd));
    ++r.drafted_at[size_t(j)];
    if (accepted) ++r.accepted_at[size_t(j)];
    const int64_t n = ++s.verdicts[size_t(j)];
    double& a = s.accept_rate[size_t(j)];
    a += ((accepted ? 1.0 : 0.0) - a) / double(std::min<int64_t>(n, 16));
    {
      std::lock_guard lk(mu_);
      ++drafted_;
      if (accepted) ++accepted_;
    }
    push_token(s, id, nullptr);
    if (!accepted || s.done) break;
    st.push_back(drafts[size_t(j)]);
    ++s.n_fed;
    // Every draft accepted, or the next token is forced (a thinking budget ran out): the next
    // row gives it.
    if (j + 1 == nd || !s.forced.empty()) {
      next_row = j + 1;
      break;
    }
  }
  if (next_row >= 0) sample(s, row(next_row));
  // Rejected drafts' KV rows are not part of the sequence: the next step overwrites them.
  cache_->set_length(s.slot, s.n_fed);
  if (opts_.spec_adaptive && s.verdicts[0] >= 16) {
    s.k = best_draft_count(s);
    if (s.k == 0) s.spec = false;
  }
}
// MTP module over the positions this step settled (each with the token after it, now known),
// keeping its cache rows in lockstep, and drafts for every sequence that decodes next: the first
// from those rows, each further one by the MTP module again, one position on, from its own
// hidden state and the draft before (its rows there are rewritten once the tokens are known).
void Engine::draft(const model::Batch& batch, const std::vector<Seq*>& members,
                   const std::vector<int64_t>& row_offset, const std::vector<float>& hidden) {
  const int64_t H = model_.config().hidden_size, V = model_.config().vocab_size;
  model::Batch mb;
  std::vector<float> h_prev;
  std::vector<Seq*> drafting;
  for (size_t i = 0; i < members.size(); ++i) {
    Seq& s = *members[i];
    if (s.done || !s.spec) continue;
    const int64_t a = batch.seqs[i].start_pos;
    const int64_t c = std::min(s.n_fed, int64_t(s.tokens.size()) - 1) - a;
    if (s.n_mtp != a || c <= 0) {  // out of lockstep (not expected): decode without drafts
      s.spec = false;
      continue;
    }
    mb.tokens.insert(mb.tokens.end(), s.tokens.begin() + a + 1, s.tokens.begin() + a + 1 + c);
    mb.seqs.push_back({.slot = s.slot, .start_pos = a, .n_tokens = c});
    const float* h = hidden.data() + row_offset[i] * H;
    h_prev.insert(h_prev.end(), h, h + c * H);
    drafting.push_back(&s);
  }
  if (drafting.empty()) return;
  model::ForwardOptions fo;
  fo.precision = opts_.precise ? kernels::Precision::F32 : kernels::Precision::BF16;
  // One MTP pass over `mb`; false if it failed (drafts are an optimisation: decode without).
  auto mtp_pass = [&](const std::vector<Seq*>& seqs) {
    const auto t0 = Clock::now();
    try {
      model::mtp_draft(model_, *cache_, h_prev.data(), mb, draft_logits_, fo, &draft_hidden_);
    } catch (const std::exception&) {
      for (Seq* s : seqs) {
        s->spec = false;
        s->drafts.clear();
        s->qs.clear();
      }
      return false;
    }
    if (seqs.size() == 1) cost_draft_.add(seconds_between(t0, Clock::now()));
    return true;
  };
  if (!mtp_pass(drafting)) return;

  // Who drafts and how many: decoding next (its newest token not yet fed), no forced token
  // pending, room for the newest token and its drafts in the context. The first steps of the
  // engine decode without drafts, to measure a plain step's cost.
  std::vector<Seq*> chain;
  std::vector<int64_t> want;
  for (size_t i = 0; i < drafting.size(); ++i) {
    Seq& s = *drafting[i];
    s.n_mtp += mb.seqs[i].n_tokens;
    slots_[size_t(s.slot)].mtp_rows = s.n_mtp;
    const int64_t k = std::min<int64_t>(s.k, context_ - s.n_fed - 1);
    if (int64_t(s.tokens.size()) != s.n_fed + 1 || !s.forced.empty() || k < 1 ||
        (opts_.spec_adaptive && cost_step_.n < 3))
      continue;
    // Its outputs move to row chain.size(): row r of the outputs belongs to chain[r].
    const size_t r = chain.size();
    std::memmove(draft_hidden_.data() + int64_t(r) * H, draft_hidden_.data() + int64_t(i) * H,
                 size_t(H) * sizeof(float));
    std::memmove(draft_logits_.data() + int64_t(r) * V, draft_logits_.data() + int64_t(i) * V,
                 size_t(V) * sizeof(float));
    chain.push_back(&s);
    want.push_back(k);
  }
  while (!chain.empty()) {
    std::vector<Seq*> next;
    std::vector<int64_t> next_want;
    mb = {};
    h_prev.clear();
    for (size_t i = 0; i < chain.size(); ++i) {
      Seq& s = *chain[i];
      s.qs.resize(s.drafts.size() + 1);
      s.sampler.distribution(std::span<const float>(draft_logits_.data() + int64_t(i) * V, size_t(V)),
                             s.qs.back());
      s.drafts.push_back(s.sampler.draw(s.qs.back()));
      if (int64_t(s.drafts.size()) == want[i]) continue;
      // Draft j+1 comes from position n_fed + j - 1 (whose next token is draft j): the MTP
      // module's output at the position before and the embedding of draft j.
      mb.tokens.push_back(s.drafts.back());
      mb.seqs.push_back({.slot = s.slot, .start_pos = s.n_fed + int64_t(s.drafts.size()) - 1, .n_tokens = 1});
      h_prev.insert(h_prev.end(), draft_hidden_.begin() + int64_t(i) * H,
                    draft_hidden_.begin() + int64_t(i + 1) * H);
      next.push_back(&s);
      next_want.push_back(want[i]);
    }
    if (next.empty() || !mtp_pass(next)) break;
    chain = std::move(next);
    want = std::move(next_want);
  }
}

// A verifying step with k drafts: its measured cost, or where k has not been measured, the
// line through a plain step and the largest k that has (a step of one sequence is memory-bound:
// each extra token adds about the same).
double Engine::verify_cost(int k) const {
  if (cost_verify_[size_t(k)].n >= 3) return cost_verify_[size_t(k)].mean;
  for (int m = int(cost_verify_.size()) - 1; m >= 1; --m)
    if (cost_verify_[size_t(m)].n >= 3)
      return cost_step_.mean + (cost_verify_[size_t(m)].mean - cost_step_.mean) * double(k) / double(m);
  return -1.0;
}

// The number of drafts per step that gives a sequence the most tokens per second: k drafts
// give E(k) = 1 + a1 + a1·a2 + … tokens for C(k) = c(k) + k·m (a verifying step and k MTP
// passes), a plain step 1 for c(0). Until the costs are measured (steps of one sequence alone)
// the current k stays; a first-draft acceptance under the floor: none.
int Engine::best_draft_count(const Seq& s) const {
  if (s.accept_rate[0] < opts_.spec_min_accept) return 0;
  const int kmax = int(s.accept_rate.size());
  if (cost_step_.n < 3 || cost_draft_.n < 3 || verify_cost(kmax) < 0) return s.k;
  int best = 0;
  double best_rate = 1.0 / cost_step_.mean, expected = 1.0, reach = 1.0;
  for (int k = 1; k <= kmax; ++k) {
    reach *= s.accept_rate[size_t(k - 1)];
    expected += reach;
    const double rate = expected / (verify_cost(k) + double(k) * cost_draft_.mean);
    if (rate > best_rate) best = k, best_rate = rate;
  }
  return best;
}

void Engine::sample(Seq& s, std::span<float> logits) {
  EngineResult& r = s.result;
  if (s.req.max_total_tokens == 0) return finish(s, FinishReason::Length);
  const int64_t pos = r.completion_tokens;  // output position of this token
  if (pos == 0) r.ttft_seconds = seconds_between(s.submitted, Clock::now());
  const bool was_thinking = s.thinking;

  int32_t id;
  SampleLogprobs lp;
  const bool want_lp = s.req.top_logprobs >= 0;
  LogitsProcessor* proc = s.req.processor.get();
  if (proc && was_thinking && !proc->constrains_reasoning()) proc = nullptr;
  if (!s.forced.empty()) {
    id = s.forced.front();
    s.forced.pop_front();
  } else {
    if (proc) proc->process(logits, pos);
    id = s.sampler.sample(logits, s.history, want_lp ? &lp : nullptr, std::max(s.req.top_logprobs, 0));
  }
  if (proc) proc->accept(id);
  push_token(s, id, want_lp ? &lp : nullptr);
}

// Appends a chosen token: callbacks, text, and every rule that can end the request.
void Engine::push_token(Seq& s, int32_t id, const SampleLogprobs* lp) {
  EngineResult& r = s.result;
  const bool was_thinking = s.thinking;
  LogitsProcessor* proc = s.req.processor.get();
  if (proc && was_thinking && !proc->constrains_reasoning()) proc = nullptr;
  s.tokens.push_back(id);
  r.tokens.push_back(id);
  ++r.completion_tokens;
  if (was_thinking) ++r.reasoning_tokens;
  else ++s.answer_tokens;
  if (s.req.sampling.has_penalties()) s.history.add_generated(id);
  if (s.cb.on_token) {
    TokenEvent ev{.id = id, .reasoning = was_thinking, .logprobs = lp};
    s.cb.on_token(ev);
  }

  if (!s.req.ignore_eos && is_eos(id)) return finish(s, FinishReason::Stop);
  if (s.text) {
    s.text_push(id);
    if (s.text->stopped()) {
      r.stop_string = s.text->stop_string();
      return finish(s, FinishReason::Stop);
    }
    if (s.thinking && s.req.reasoning) {
      if (s.text->in_reasoning()) s.saw_reasoning = true;
      else if (s.saw_reasoning || s.answer_began) s.thinking = false;
    }
  }
  if (proc && proc->done()) return finish(s, FinishReason::Stop);
  if (s.thinking) {
    if (s.req.max_reasoning_tokens >= 0 && r.reasoning_tokens >= s.req.max_reasoning_tokens &&
        s.forced.empty()) {
      // Out of thinking budget: close the block so the answer can begin (once; if the model
      // still does not leave its reasoning, the request ends).
      if (think_close_.empty() || s.closed_thinking) return finish(s, FinishReason::Length);
      s.forced.assign(think_close_.begin(), think_close_.end());
      s.closed_thinking = true;
    }
  } else if (s.req.max_tokens >= 0 && s.answer_tokens >= s.req.max_tokens) {
    return finish(s, FinishReason::Length);
  }
  if (s.req.max_total_tokens >= 0 && r.completion_tokens >= s.req.max_total_tokens)
    return finish(s, FinishReason::Length);
  // The next forward writes this token at position tokens.size() - 1.
  if (int64_t(s.tokens.size()) >= context_) {
    r.context_full = true;
    return finish(s, FinishReason::Length);
  }
}

void Engine::finish(Seq& s, FinishReason why, std::string error) {
  if (s.done) return;
  s.done = true;
  s.text_finish();
  EngineResult& r = s.result;
  r.finish = why;
  r.error = std::move(error);
  const auto now = Clock::now();
  r.total_seconds = seconds_between(s.submitted, now);
  if (s.prefilled != Clock::time_point{}) r.decode_seconds = seconds_between(s.prefilled, now);
  else if (s.admitted != Clock::time_point{}) r.prefill_seconds = seconds_between(s.admitted, now);
  if (s.slot >= 0) {
    Slot& sl = slots_[size_t(s.slot)];
    sl.busy = false;
    sl.last_use = ++use_clock_;
  }
  if (s.cb.on_done) s.cb.on_done(r);
  s.cb = {};  // release whatever the callbacks hold, now
  s.req.processor.reset();
}

}  // namespace seek::generate
