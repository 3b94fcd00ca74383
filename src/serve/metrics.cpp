#include "serve/metrics.h"

#include <fmt/format.h>

namespace seek::serve {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  std::lock_guard lk(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lk(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name, sum_,
                     name, count_);
}

Metrics::Metrics()
    : ttft({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      inter_token({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      duration({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}) {}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::tokens(int64_t prompt, int64_t cache_hit, int64_t completion, int64_t reasoning) {
  std::lock_guard lk(mu_);
  prompt_tokens_ += uint64_t(prompt);
  cache_hit_tokens_ += uint64_t(cache_hit);
  completion_tokens_ += uint64_t(completion);
  reasoning_tokens_ += uint64_t(reasoning);
}

void Metrics::client_disconnect() {
  std::lock_guard lk(mu_);
  ++disconnects_;
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  {
    std::lock_guard lk(mu_);
    out += "# HELP seek_requests_total HTTP requests by endpoint and status code.\n"
           "# TYPE seek_requests_total counter\n";
    for (const auto& [key, n] : requests_)
      out += fmt::format("seek_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first,
                         key.second, n);
    auto counter = [&](const char* name, const char* help, uint64_t v) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
    };
    counter("seek_prompt_tokens_total", "Prompt tokens of finished requests.", prompt_tokens_);
    counter("seek_prompt_cache_hit_tokens_total", "Prompt tokens served from the prefix cache.",
            cache_hit_tokens_);
    counter("seek_completion_tokens_total", "Generated tokens (reasoning included).", completion_tokens_);
    counter("seek_reasoning_tokens_total", "Generated tokens inside <think> blocks.", reasoning_tokens_);
    counter("seek_client_disconnects_total", "Requests whose client went away before the end.", disconnects_);
  }
  auto gauge = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  gauge("seek_queue_depth", "Requests waiting for a sequence slot.", g.queued);
  gauge("seek_active_sequences", "Sequences being prefilled or decoded.", g.active);
  gauge("seek_kv_slots", "KV-cache slots (active sequences plus prefix cache).", g.slots);
  gauge("seek_max_sequences", "Sequences decoded together at most.", g.max_seqs);
  out += fmt::format("# HELP seek_engine_steps_total Batched forward calls.\n"
                     "# TYPE seek_engine_steps_total counter\nseek_engine_steps_total {}\n", g.steps);
  out += fmt::format("# HELP seek_engine_batched_tokens_total Tokens over all forward calls.\n"
                     "# TYPE seek_engine_batched_tokens_total counter\n"
                     "seek_engine_batched_tokens_total {}\n", g.batched_tokens);
  out += fmt::format("# HELP seek_spec_drafted_tokens_total MTP draft tokens verified (--speculative).\n"
                     "# TYPE seek_spec_drafted_tokens_total counter\n"
                     "seek_spec_drafted_tokens_total {}\n", g.drafted_tokens);
  out += fmt::format("# HELP seek_spec_accepted_tokens_total MTP draft tokens accepted.\n"
                     "# TYPE seek_spec_accepted_tokens_total counter\n"
                     "seek_spec_accepted_tokens_total {}\n", g.accepted_tokens);
  ttft.render(out, "seek_time_to_first_token_seconds", "Request arrival to first generated token.");
  inter_token.render(out, "seek_inter_token_latency_seconds", "Time between consecutive tokens of a stream.");
  duration.render(out, "seek_request_duration_seconds", "Request arrival to the last byte of the answer.");
  return out;
}

}  // namespace seek::serve
