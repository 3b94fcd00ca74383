// The hand-over between the engine thread and an HTTP worker: the engine's callbacks push
// events (never blocking), the worker waits for them with a timeout so it can send keep-alives
// and notice a client that went away. Consecutive text of one kind is merged, so a worker that
// falls behind sends fewer, larger chunks instead of growing a backlog of tiny ones.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "generate/engine.h"

namespace seek::serve {

struct Event {
  enum class Kind { Start, Text, Token, Done } kind = Kind::Text;
  std::string text;
  bool reasoning = false;
  int32_t id = 0;
  std::optional<generate::SampleLogprobs> logprobs;
};

// Always held by shared_ptr: the engine's callbacks keep the channel alive until on_done.
class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // `tokens`: also deliver token events (logprobs need them).
  generate::EngineCallbacks callbacks(bool tokens) {
    generate::EngineCallbacks cb;
    auto self = shared_from_this();
    cb.on_start = [self] { self->push(make(Event::Kind::Start)); };
    cb.on_text = [self, this](std::string_view t, bool reasoning) {
      std::lock_guard lk(mu_);
      if (!events_.empty() && events_.back().kind == Event::Kind::Text &&
          events_.back().reasoning == reasoning) {
        events_.back().text.append(t);
      } else {
        Event e = make(Event::Kind::Text);
        e.text = std::string(t);
        e.reasoning = reasoning;
        events_.push_back(std::move(e));
      }
      cv_.notify_all();
    };
    if (tokens)
      cb.on_token = [self](const generate::TokenEvent& ev) {
        Event e = make(Event::Kind::Token);
        e.reasoning = ev.reasoning;
        e.id = ev.id;
        if (ev.logprobs) e.logprobs = *ev.logprobs;
        self->push(std::move(e));
      };
    cb.on_done = [self, this](const generate::EngineResult& r) {
      std::lock_guard lk(mu_);
      result_ = r;
      events_.push_back(make(Event::Kind::Done));
      cv_.notify_all();
    };
    return cb;
  }

  // Moves out what has arrived, waiting up to `timeout` for something. False on timeout.
  bool wait(std::vector<Event>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return !events_.empty(); })) return false;
    for (auto& e : events_) out.push_back(std::move(e));
    events_.clear();
    return true;
  }

  // Valid once a Done event was received.
  generate::EngineResult result() const {
    std::lock_guard lk(mu_);
    return result_;
  }

 private:
  static Event make(Event::Kind k) {
    Event e;
    e.kind = k;
    return e;
  }
  void push(Event e) {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  generate::EngineResult result_;
};

}  // namespace seek::serve
