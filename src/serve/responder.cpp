#include "serve/responder.h"

#include <ctime>

#include "serve/api_error.h"

namespace seek::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using generate::EngineResult;
using generate::FinishReason;

generate::EngineRequest engine_request(ServerState& s, const SamplingFields& f,
                                       std::vector<int32_t> prompt) {
  generate::EngineRequest er;
  er.prompt = std::move(prompt);
  er.sampling = f.sampler;
  er.sampling.seed = f.seed ? *f.seed
                            : s.counter.fetch_add(1) * 0x9E3779B97F4A7C15ull +
                                  uint64_t(std::time(nullptr));
  er.max_tokens = f.max_tokens;
  er.stop = f.stop;
  return er;
}

std::string test_script(const ServerState& s, const httplib::Request& req, const std::string& fallback) {
  if (!s.opts.test_hooks || !req.has_header("X-Seek-Test-Script")) return fallback;
  const json text = json::parse(req.get_header_value("X-Seek-Test-Script"), nullptr, false);
  if (!text.is_string()) bad_request("X-Seek-Test-Script must hold a JSON string");
  return text.get<std::string>();
}

json usage_json(const EngineResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_cache_hit_tokens", r.cached_tokens},
          {"prompt_cache_miss_tokens", r.prompt_tokens - r.cached_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", r.reasoning_tokens}}}};
}

namespace {

// A finish that is not a normal end, as an API error (nullopt for stop / length).
std::optional<ApiError> finish_error(const EngineResult& r) {
  switch (r.finish) {
    case FinishReason::Stop:
    case FinishReason::Length:
      return std::nullopt;
    case FinishReason::Timeout:
      return ApiError(503, "the request timed out: " + r.error, "service_unavailable_error", {},
                      "timeout");
    case FinishReason::Shutdown:
      return ApiError(503, "the server is shutting down", "service_unavailable_error", {},
                      "shutting_down");
    case FinishReason::Cancelled:
      return ApiError(499, "the request was cancelled", "invalid_request_error", {}, "cancelled");
    case FinishReason::Error:
      return ApiError(500, "generation failed: " + r.error, "server_error", {}, "internal_error");
  }
  return std::nullopt;
}

// Everything one in-flight request needs, shared by the handler and the content provider
// (which httplib may run after the handler returned).
struct Flight {
  ServerState* s = nullptr;
  std::string endpoint;
  std::shared_ptr<Channel> ch;
  std::shared_ptr<generate::RequestHandle> handle;
  std::shared_ptr<Output> out;
  Clock::time_point t0, hard_deadline;
  bool include_usage = false;
  bool started = false;  // streaming: the first chunks were written
  bool done = false;
  bool finished = false;  // metrics recorded
  std::vector<json> chunks;

  std::chrono::milliseconds keepalive() const {
    return std::chrono::milliseconds(int64_t(s->opts.keepalive_interval * 1000.0));
  }

  // Pulls events for up to one keep-alive interval, feeding them to the output. True if any
  // arrived. Past the hard deadline (engine deadline + grace) the request is abandoned.
  bool pump() {
    std::vector<Event> evs;
    if (!ch->wait(evs, keepalive())) {
      if (Clock::now() > hard_deadline) {
        handle->cancel();
        done = true;
        forced_timeout = true;
      }
      return false;
    }
    for (const Event& e : evs) {
      if (e.kind == Event::Kind::Done) done = true;
      else if (e.kind != Event::Kind::Start) out->event(e, chunks);
    }
    return true;
  }
  bool forced_timeout = false;

  EngineResult result() const {
    EngineResult r = ch->result();
    if (forced_timeout && r.finish != FinishReason::Timeout) {
      r.finish = FinishReason::Timeout;
      r.error = "no answer from the engine before the deadline";
    }
    return r;
  }

  void record(int status, const EngineResult* r) {
    if (finished) return;
    finished = true;
    s->metrics.request(endpoint, status);
    if (r) s->metrics.tokens(r->prompt_tokens, r->cached_tokens, r->completion_tokens, r->reasoning_tokens);
    s->metrics.duration.observe(std::chrono::duration<double>(Clock::now() - t0).count());
  }
};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool write(httplib::DataSink& sink, const std::string& s) { return sink.write(s.data(), s.size()); }

}  // namespace

void respond(ServerState& s, httplib::Response& res, const std::string& endpoint,
             generate::EngineRequest er, std::shared_ptr<Output> out, bool stream,
             bool include_usage) {
  auto f = std::make_shared<Flight>();
  f->s = &s;
  f->endpoint = endpoint;
  f->ch = std::make_shared<Channel>();
  f->out = std::move(out);
  f->include_usage = include_usage;
  f->t0 = Clock::now();
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(s.opts.request_timeout));
  er.deadline = f->t0 + timeout;
  f->hard_deadline = er.deadline + std::chrono::seconds(30);

  generate::EngineCallbacks cb = f->ch->callbacks(f->out->wants_tokens());
  // Latency metrics, measured on the engine thread as tokens are produced.
  struct Timing {
    Clock::time_point last;
    bool first = true;
  };
  auto timing = std::make_shared<Timing>();
  cb.on_token = [inner = std::move(cb.on_token), m = s.metrics_ptr, timing, t0 = f->t0](
                    const generate::TokenEvent& ev) {
    const auto now = Clock::now();
    if (timing->first) m->ttft.observe(std::chrono::duration<double>(now - t0).count());
    else m->inter_token.observe(std::chrono::duration<double>(now - timing->last).count());
    timing->first = false;
    timing->last = now;
    if (inner) inner(ev);
  };

  try {
    f->handle = s.engine.submit(std::move(er), std::move(cb));
  } catch (const generate::EngineBusy& b) {
    if (b.why == generate::EngineBusy::Why::QueueFull)
      throw ApiError(429, "the server is busy: " + std::string(b.what()) + "; retry later",
                     "rate_limit_error", {}, "queue_full");
    throw ApiError(503, b.what(), "service_unavailable_error", {}, "shutting_down");
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "invalid_request_error", "messages", "invalid_request");
  }

  if (!stream) {
    // Most answers come within one keep-alive interval: then the status code can still say
    // what happened. Longer ones switch to a chunked body led by blank lines.
    auto answer = [f]() -> std::pair<int, json> {
      const EngineResult r = f->result();
      if (auto err = finish_error(r)) return {err->status, f->out->error_json(*err)};
      return {200, f->out->response(r)};
    };
    while (!f->done && f->pump()) {
    }
    if (f->done) {
      auto [status, body] = answer();
      const EngineResult r = f->result();
      f->record(status, &r);
      send_json(res, status, body);
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "application/json",
        [f, answer](size_t, httplib::DataSink& sink) {
          if (!f->done) f->pump();
          if (!f->done) {
            if (write(sink, "\n")) return true;
            f->handle->cancel();
            f->s->metrics.client_disconnect();
            f->record(499, nullptr);
            return false;
          }
          auto [status, body] = answer();
          const EngineResult r = f->result();
          f->record(status, &r);
          write(sink, dump(body));
          sink.done();
          return true;
        },
        [f](bool ok) {
          if (!ok) f->handle->cancel();
        });
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  // SSE: "data: {...}" events, ": keep-alive" comments and a closing [DONE]. NDJSON: one object
  // a line; its keep-alive is a space, which leads the next line (JSON allows whitespace
  // there, and line-splitting clients would warn about a blank line).
  const bool nd = f->out->ndjson();
  auto frame = [nd](const json& j) { return nd ? dump(j) + "\n" : "data: " + dump(j) + "\n\n"; };
  res.set_chunked_content_provider(
      nd ? "application/x-ndjson" : "text/event-stream",
      [f, nd, frame](size_t, httplib::DataSink& sink) {
        auto gone = [&] {
          f->handle->cancel();
          f->s->metrics.client_disconnect();
          f->record(499, nullptr);
          return false;
        };
        if (!f->started) {
          f->started = true;
          std::vector<json> first;
          f->out->start(first);
          std::string buf;
          for (const json& c : first) buf += frame(c);
          if (!buf.empty() && !write(sink, buf)) return gone();
        }
        // Nothing within a keep-alive interval: a comment keeps proxies and clients waiting
        // (and shows whether the client is still there). pump() may also give up on the engine
        // past the hard deadline; then `done` is set and the error goes out below.
        if (!f->done && !f->pump() && !f->done)
          return write(sink, nd ? " " : ": keep-alive\n\n") ? true : gone();
        std::string buf;
        for (const json& c : f->chunks) buf += frame(c);
        f->chunks.clear();
        if (f->done) {
          const EngineResult r = f->result();
          if (auto err = finish_error(r)) {
            buf += frame(f->out->error_json(*err));
            f->record(err->status, &r);
          } else {
            std::vector<json> last;
            f->out->finish(r, last);
            for (const json& c : last) buf += frame(c);
            if (f->include_usage) {
              json u = f->out->chunk_base();
              u["choices"] = json::array();
              u["usage"] = usage_json(r);
              buf += frame(u);
            }
            f->record(200, &r);
          }
          if (!nd) buf += "data: [DONE]\n\n";
          const bool ok = write(sink, buf);
          sink.done();
          return ok;
        }
        if (!buf.empty() && !write(sink, buf)) return gone();
        return true;
      },
      [f](bool ok) {
        if (!ok) f->handle->cancel();
      });
}

}  // namespace seek::serve
