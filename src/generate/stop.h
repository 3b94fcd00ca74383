// Stop strings over streamed text. Text that might be the start of a stop string is held back
// until it is known not to be; the stop string itself and everything after it are never emitted
// (OpenAI / vLLM semantics). Works on bytes: stop strings and pushed text are UTF-8, and a held
// suffix always starts where a stop string starts, so emitted text never splits a character.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace seek::generate {

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stops);  // empty strings are ignored

  // Appends `text`; returns the text that can be emitted now (empty once stopped).
  std::string push(std::string_view text);
  // End of generation without a stop: releases the held-back text.
  std::string finish();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that fired
  size_t max_stop_length() const { return max_len_; }

 private:
  std::string scan(bool final);

  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  size_t max_len_ = 0;
  bool stopped_ = false;
};

}  // namespace seek::generate
