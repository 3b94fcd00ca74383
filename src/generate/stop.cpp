#include "generate/stop.h"

#include <algorithm>
#include <utility>

namespace seek::generate {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) {
      max_len_ = std::max(max_len_, s.size());
      stops_.push_back(std::move(s));
    }
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  return scan(/*final=*/false);
}

std::string StopMatcher::finish() {
  if (stopped_) return {};
  return scan(/*final=*/true);
}

// held_ is the held-back tail (shorter than the longest stop string) plus the new text, so
// every search here is small.
std::string StopMatcher::scan(bool final) {
  if (stops_.empty()) return std::exchange(held_, {});

  // The earliest complete occurrence of any stop string.
  size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const auto& s : stops_) {
    const size_t pos = held_.find(s);
    if (pos < best) {
      best = pos;
      best_stop = &s;
    }
  }

  // The earliest position from which the tail may still grow into a stop string: the longest
  // suffix that is a proper prefix of one. Until the stream ends this text must be held, and
  // an occurrence found further right must wait too (with stops {"\nUser:", "User"} a complete
  // "User" is not the earliest stop while "\nUser" may still become "\nUser:").
  size_t hold = 0;
  if (!final)
    for (const auto& s : stops_) {
      const size_t max_k = std::min(s.size() - 1, held_.size());
      for (size_t k = max_k; k > hold; --k)
        if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    }
  const size_t hold_from = held_.size() - hold;

  if (best != std::string::npos && best <= hold_from) {
    stopped_ = true;
    matched_ = *best_stop;
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  std::string out = held_.substr(0, hold_from);
  held_.erase(0, hold_from);
  return out;
}

}  // namespace seek::generate
