// Prometheus text-format metrics (GET /metrics): request counts by endpoint and status, tokens
// in and out, prefix-cache hits, queue depth and active sequences, and latency histograms
// (time to first token, inter-token latency, whole request). Thread-safe; cheap enough to
// update from the engine thread for every token.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace seek::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, ascending (+Inf implied)
  void observe(double v);
  // name_bucket{le=...} lines, name_sum, name_count.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative)
  double sum_ = 0.0;
  uint64_t count_ = 0;
  mutable std::mutex mu_;
};

struct Gauges {  // sampled when /metrics is scraped
  int queued = 0, active = 0, slots = 0, max_seqs = 0;
  uint64_t steps = 0, batched_tokens = 0;
  uint64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& endpoint, int status);
  void tokens(int64_t prompt, int64_t cache_hit, int64_t completion, int64_t reasoning);
  void client_disconnect();
  Histogram ttft, inter_token, duration;

  std::string render(const Gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, cache_hit_tokens_ = 0, completion_tokens_ = 0,
           reasoning_tokens_ = 0, disconnects_ = 0;
};

}  // namespace seek::serve
