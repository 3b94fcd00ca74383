#include "rl/answer_format.h"

namespace seek::rl {

namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kAnswerOpen = "<answer>", kAnswerClose = "</answer>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t count(std::string_view s, std::string_view tag) {
  size_t n = 0;
  for (size_t p = s.find(tag); p != std::string_view::npos; p = s.find(tag, p + tag.size())) ++n;
  return n;
}

FormatCheck bad(std::string reason) { return {false, std::move(reason)}; }

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

FormatCheck check_format(std::string_view prompt, std::string_view completion) {
  std::string_view p = trim(prompt);
  const bool opened_by_prompt = p.size() >= kThinkOpen.size() && p.ends_with(kThinkOpen);
  std::string_view c = trim(completion);

  const size_t think_opens = count(c, kThinkOpen) + (opened_by_prompt ? 1 : 0);
  if (think_opens == 0) return bad("no <think>");
  if (think_opens > 1) return bad("more than one <think>");
  if (!opened_by_prompt && !c.starts_with(kThinkOpen)) return bad("does not start with <think>");
  const size_t close = c.find(kThinkClose);
  if (close == std::string_view::npos) return bad("no </think>");
  if (count(c, kThinkClose) > 1) return bad("more than one </think>");

  const size_t a_open = c.find(kAnswerOpen), a_close = c.find(kAnswerClose);
  if (a_open == std::string_view::npos) return bad("no <answer>");
  if (a_close == std::string_view::npos) return bad("no </answer>");
  if (a_open < close || a_close < close) return bad("<answer> inside <think>");
  if (count(c, kAnswerOpen) > 1 || count(c, kAnswerClose) > 1) return bad("more than one <answer>");
  if (a_close < a_open) return bad("</answer> before <answer>");
  if (trim(c.substr(a_open + kAnswerOpen.size(), a_close - a_open - kAnswerOpen.size())).empty())
    return bad("empty <answer>");
  if (a_close + kAnswerClose.size() != c.size()) return bad("text after </answer>");
  return {true, "format ok"};
}

std::optional<std::string_view> last_answer(std::string_view completion) {
  const size_t close = completion.rfind(kAnswerClose);
  if (close == std::string_view::npos) return std::nullopt;
  const size_t open = completion.substr(0, close).rfind(kAnswerOpen);
  if (open == std::string_view::npos) return std::nullopt;
  return trim(completion.substr(open + kAnswerOpen.size(), close - open - kAnswerOpen.size()));
}

RewardResult tiered_result(const TierValues& v, bool correct, const FormatCheck& format,
                           std::string why) {
  if (correct) return {v.correct, true, "correct"};
  if (format.ok) return {v.format, false, std::move(why)};
  return {0.0, false, std::move(why) + "; " + format.reason};
}

}  // namespace seek::rl
