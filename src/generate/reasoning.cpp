#include "generate/reasoning.h"

#include <algorithm>

namespace seek::generate {

namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_newline(char c) { return c == '\n' || c == '\r'; }
bool is_space(char c) { return c == ' ' || c == '\t' || is_newline(c); }

void emit(std::vector<TextPiece>& out, std::string_view text, bool reasoning) {
  if (text.empty()) return;
  if (!out.empty() && out.back().reasoning == reasoning)
    out.back().text.append(text);
  else
    out.push_back({std::string(text), reasoning});
}

// Length of the longest suffix of `s` that is a proper prefix of `tag`.
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k)
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  return 0;
}

}  // namespace

bool prompt_opens_thinking(std::string_view prompt) {
  while (!prompt.empty() && is_space(prompt.back())) prompt.remove_suffix(1);
  return prompt.ends_with(kOpen);
}

ReasoningSplitter::ReasoningSplitter(bool starts_in_thinking)
    : state_(starts_in_thinking ? State::Thinking : State::Start) {}

std::vector<TextPiece> ReasoningSplitter::push(std::string_view text) {
  std::vector<TextPiece> out;
  if (state_ == State::Answer) {  // the common case once past the reasoning: no copies held
    emit(out, text, false);
    return out;
  }
  buf_.append(text);
  run(out);
  return out;
}

void ReasoningSplitter::run(std::vector<TextPiece>& out) {
  for (;;) {
    switch (state_) {
      case State::Start: {
        size_t i = 0;
        while (i < buf_.size() && is_space(buf_[i])) ++i;
        std::string_view rest = std::string_view(buf_).substr(i);
        if (rest.starts_with(kOpen)) {
          buf_.erase(0, i + kOpen.size());
          state_ = State::Thinking;
          continue;
        }
        if (kOpen.starts_with(rest)) return;  // still undecided (maybe empty)
        state_ = State::Answer;
        emit(out, buf_, false);
        buf_.clear();
        return;
      }
      case State::Thinking: {
        if (!reasoning_began_) {  // newlines right after <think> are formatting
          size_t i = 0;
          while (i < buf_.size() && is_newline(buf_[i])) ++i;
          buf_.erase(0, i);
        }
        const size_t close = buf_.find(kClose);
        size_t end = close != std::string::npos ? close : buf_.size() - partial_tag_suffix(buf_, kClose);
        while (end > 0 && is_newline(buf_[end - 1])) --end;  // newlines before </think>
        if (end > 0) {
          emit(out, std::string_view(buf_).substr(0, end), true);
          reasoning_began_ = true;
        }
        if (close == std::string::npos) {
          buf_.erase(0, end);  // keep the possible tag start and the newlines before it
          return;
        }
        buf_.erase(0, close + kClose.size());
        state_ = State::AnswerStart;
        continue;
      }
      case State::AnswerStart: {
        size_t i = 0;
        while (i < buf_.size() && is_newline(buf_[i])) ++i;
        buf_.erase(0, i);
        if (buf_.empty()) return;
        state_ = State::Answer;
        continue;
      }
      case State::Answer:
        emit(out, buf_, false);
        buf_.clear();
        return;
    }
  }
}

std::vector<TextPiece> ReasoningSplitter::finish() {
  std::vector<TextPiece> out;
  switch (state_) {
    case State::Start:
      emit(out, buf_, false);
      break;
    case State::Thinking: {  // unterminated reasoning: release a partial tag, drop newlines
      size_t end = buf_.size();
      while (end > 0 && is_newline(buf_[end - 1])) --end;
      emit(out, std::string_view(buf_).substr(0, end), true);
      break;
    }
    case State::AnswerStart:
    case State::Answer:
      break;
  }
  buf_.clear();
  return out;
}

}  // namespace seek::generate
