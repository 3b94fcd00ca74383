#include "rl/rewards.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/error.h"
#include "rl/countdown.h"
#include "rl/reward_model.h"

namespace seek::rl {

RewardResult FormatReward::score(const RewardInput& in) const {
  FormatCheck f = check_format(in.prompt, in.completion);
  return {f.ok ? 1.0 : 0.0, f.ok, std::move(f.reason)};
}

// ---- Arithmetic ---------------------------------------------------------------------------------

namespace {

// Up to 18 digits (fits int64); returns the digit count read, 0 when none or too many.
size_t read_digits(std::string_view s, size_t pos, int64_t& value) {
  size_t n = 0;
  value = 0;
  while (pos + n < s.size() && s[pos + n] >= '0' && s[pos + n] <= '9') {
    if (n == 18) return 0;
    value = value * 10 + (s[pos + n] - '0');
    ++n;
  }
  return n;
}

}  // namespace

std::optional<Rational> parse_number(std::string_view text) {
  std::string_view s = trim(text);
  size_t pos = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) pos = 1;
  int64_t whole;
  size_t n = read_digits(s, pos, whole);
  if (n == 0) return std::nullopt;
  pos += n;
  std::optional<Rational> v = Rational{whole, 1};
  if (pos < s.size() && (s[pos] == '/' || s[pos] == '.')) {
    const char sep = s[pos++];
    int64_t part;
    size_t m = read_digits(s, pos, part);
    if (m == 0) return std::nullopt;
    pos += m;
    if (sep == '/') {
      v = div(*v, Rational{part, 1});  // nullopt for a zero denominator
    } else {
      int64_t scale = 1;
      for (size_t i = 0; i < m; ++i) scale *= 10;
      v = add(*v, Rational{part, scale});  // add() reduces 50/100 to 1/2
    }
  }
  if (pos != s.size() || !v) return std::nullopt;
  return negative ? sub(Rational{0, 1}, *v) : v;
}

Rational ArithmeticReward::task_answer(const nlohmann::json& task) {
  if (!task.is_object()) fail("arithmetic task: expected a JSON object, got {}", task.type_name());
  std::optional<Rational> answer, expr_value;
  if (auto a = task.find("answer"); a != task.end()) {
    // An unsigned JSON integer past int64 would wrap in get<int64_t>(); it is no answer.
    if (a->is_number_integer() && !(a->is_number_unsigned() && a->get<uint64_t>() > INT64_MAX))
      answer = Rational{a->get<int64_t>(), 1};
    else if (a->is_string())
      answer = parse_number(a->get<std::string>());
    if (!answer)
      fail(
          "arithmetic task: field \"answer\" must be an integer or a string like \"84\", \"7/2\" "
          "or \"3.5\", got {}",
          a->dump());
  }
  if (auto e = task.find("expression"); e != task.end()) {
    if (!e->is_string()) fail("arithmetic task: field \"expression\" must be a string");
    ExprResult r = evaluate_expression(e->get<std::string>());
    if (!r.ok) fail("arithmetic task: field \"expression\": {}", r.error);
    expr_value = r.value;
  }
  if (!answer && !expr_value) fail("arithmetic task: needs field \"answer\" or \"expression\"");
  if (answer && expr_value && *answer != *expr_value)
    fail("arithmetic task: \"expression\" equals {} but \"answer\" is {}", expr_value->str(),
         answer->str());
  return answer ? *answer : *expr_value;
}

RewardResult ArithmeticReward::score(const RewardInput& in) const {
  const Rational expected = task_answer(in.task);
  const FormatCheck format = check_format(in.prompt, in.completion);
  std::optional<std::string_view> answer = last_answer(in.completion);
  if (!answer) return tiered_result(values_, false, format, "no <answer>…</answer>");
  std::optional<Rational> got = parse_number(*answer);
  if (!got) return tiered_result(values_, false, format, "answer is not a number");
  if (*got != expected)
    return tiered_result(values_, false, format,
                         fmt::format("answer {} is not {}", got->str(), expected.str()));
  return tiered_result(values_, true, format, "");
}

// ---- Language consistency -----------------------------------------------------------------------

Script script_of(char32_t c) {
  auto in = [c](char32_t lo, char32_t hi) { return c >= lo && c <= hi; };
  if (in('A', 'Z') || in('a', 'z')) return Script::Latin;
  if (c < 0xC0) return Script::None;  // ASCII digits, punctuation, spaces; Latin-1 symbols
  if (c == 0xD7 || c == 0xF7) return Script::None;  // × ÷
  if (in(0xC0, 0x24F) || in(0x1E00, 0x1EFF) || in(0xFF21, 0xFF3A) || in(0xFF41, 0xFF5A))
    return Script::Latin;
  if (in(0x250, 0x36F)) return Script::None;  // IPA, spacing modifiers, combining marks
  if (in(0x370, 0x3FF) || in(0x1F00, 0x1FFF)) return Script::Greek;
  if (in(0x400, 0x52F)) return Script::Cyrillic;
  if (in(0x531, 0x58F)) return Script::Armenian;
  if (in(0x590, 0x5FF)) return Script::Hebrew;
  if (in(0x660, 0x669) || in(0x6F0, 0x6F9) || c == 0x60C || c == 0x61B || c == 0x61F || c == 0x6D4)
    return Script::None;  // Arabic digits and punctuation
  if (in(0x600, 0x6FF) || in(0x750, 0x77F) || in(0x8A0, 0x8FF)) return Script::Arabic;
  if (in(0x966, 0x96F) || c == 0x964 || c == 0x965)
    return Script::None;  // Devanagari digits, danda
  if (in(0x900, 0x97F)) return Script::Devanagari;
  if (in(0xE50, 0xE59)) return Script::None;  // Thai digits
  if (in(0xE00, 0xE7F)) return Script::Thai;
  if (in(0x1100, 0x11FF) || in(0x3130, 0x318F) || in(0xAC00, 0xD7AF)) return Script::Hangul;
  if (in(0x3040, 0x30FF) || in(0x3400, 0x4DBF) || in(0x4E00, 0x9FFF) || in(0xF900, 0xFAFF) ||
      in(0x20000, 0x2FA1F))
    return c == 0x30FB ? Script::None : Script::Han;  // ・ is punctuation
  // Punctuation, symbols, arrows, math, box drawing, CJK punctuation, fullwidth forms, private
  // use, specials, emoji and variation selectors hold no letters.
  if (in(0x2000, 0x2BFF) || in(0x3000, 0x303F) || in(0xE000, 0xF8FF) || in(0xFE00, 0xFE6F) ||
      in(0xFF00, 0xFFFF) || in(0x1F000, 0x1FAFF) || in(0xE0000, 0xE01EF))
    return Script::None;
  return Script::Other;
}

std::string_view script_name(Script s) {
  static constexpr std::array<std::string_view, 12> names = {
      "none",   "Latin",      "Greek", "Cyrillic", "Armenian", "Hebrew",
      "Arabic", "Devanagari", "Thai",  "Hangul",   "Han",      "other"};
  return names[static_cast<size_t>(s)];
}

namespace {

constexpr size_t kScripts = 12;

// Letters per script of UTF-8 text; malformed sequences are skipped a byte at a time.
std::array<size_t, kScripts> count_scripts(std::string_view s) {
  std::array<size_t, kScripts> counts{};
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80           ? 1
                 : (b >> 5) == 0x6  ? 2
                 : (b >> 4) == 0xE  ? 3
                 : (b >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) {
      ++i;
      continue;
    }
    char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool valid = true;
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont >> 6) != 0x2) valid = false;
      c = (c << 6) | (cont & 0x3F);
    }
    if (!valid) {
      ++i;
      continue;
    }
    ++counts[static_cast<size_t>(script_of(c))];
    i += len;
  }
  counts[static_cast<size_t>(Script::None)] = 0;
  return counts;
}

std::string without_tags(std::string_view s) {
  std::string out(s);
  for (std::string_view tag : {"<think>", "</think>", "<answer>", "</answer>"})
    for (size_t p = out.find(tag); p != std::string::npos; p = out.find(tag, p))
      out.erase(p, tag.size());
  return out;
}

}  // namespace

RewardResult LanguageConsistencyReward::score(const RewardInput& in) const {
  const auto prompt = count_scripts(in.prompt);
  size_t dominant = 0;
  for (size_t s = 1; s < kScripts; ++s)
    if (prompt[s] > prompt[dominant]) dominant = s;
  if (prompt[dominant] == 0) return {1.0, true, "prompt has no letters"};
  const auto answer = count_scripts(without_tags(in.completion));
  size_t total = 0;
  for (size_t n : answer) total += n;
  if (total == 0) return {1.0, true, "completion has no letters"};
  const double share = static_cast<double>(answer[dominant]) / static_cast<double>(total);
  return {share, answer[dominant] == total,
          fmt::format("{:.2f} of the letters in {}", share,
                      script_name(static_cast<Script>(dominant)))};
}

// ---- Weighted sum and the factory ---------------------------------------------------------------

WeightedSumReward::WeightedSumReward(std::vector<std::pair<double, std::unique_ptr<Reward>>> terms)
    : terms_(std::move(terms)) {
  if (terms_.empty()) fail("reward \"sum\": needs at least one term");
}

RewardResult WeightedSumReward::score(const RewardInput& in) const {
  RewardResult out;
  for (size_t i = 0; i < terms_.size(); ++i) {
    RewardResult r = terms_[i].second->score(in);
    out.reward += terms_[i].first * r.reward;
    if (i == 0) out.correct = r.correct;
    out.reason += fmt::format("{}{}: {}", i ? "; " : "", terms_[i].second->name(), r.reason);
  }
  return out;
}

std::vector<RewardResult> WeightedSumReward::score_batch(std::span<const RewardInput> in) const {
  std::vector<RewardResult> out(in.size());
  for (size_t i = 0; i < terms_.size(); ++i) {
    const std::vector<RewardResult> r = terms_[i].second->score_batch(in);
    for (size_t k = 0; k < in.size(); ++k) {
      out[k].reward += terms_[i].first * r[k].reward;
      if (i == 0) out[k].correct = r[k].correct;
      out[k].reason += fmt::format("{}{}: {}", i ? "; " : "", terms_[i].second->name(), r[k].reason);
    }
  }
  return out;
}

namespace {

void check_fields(const nlohmann::json& c, const std::string& name,
                  std::initializer_list<std::string_view> known) {
  for (const auto& [key, _] : c.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    fail("reward \"{}\": unknown field \"{}\" (known: {})", name, key, list);
  }
}

double number_field(const nlohmann::json& c, const std::string& name, const char* field,
                    double fallback) {
  auto f = c.find(field);
  if (f == c.end()) return fallback;
  if (!f->is_number())
    fail("reward \"{}\": field \"{}\" must be a number, got {}", name, field, f->dump());
  return f->get<double>();
}

TierValues tiers(const nlohmann::json& c, const std::string& name) {
  check_fields(c, name, {"name", "correct", "format"});
  TierValues v;
  v.correct = number_field(c, name, "correct", v.correct);
  v.format = number_field(c, name, "format", v.format);
  return v;
}

}  // namespace

std::unique_ptr<Reward> make_reward(const nlohmann::json& config) {
  if (config.is_string()) return make_reward(nlohmann::json{{"name", config}});
  if (!config.is_object())
    fail("reward config: expected a name or an object, got {}", config.dump());
  auto n = config.find("name");
  if (n == config.end() || !n->is_string())
    fail("reward config: field \"name\" (a string) is missing in {}", config.dump());
  const std::string name = n->get<std::string>();
  if (name == "countdown") return std::make_unique<CountdownReward>(tiers(config, name));
  if (name == "arithmetic") return std::make_unique<ArithmeticReward>(tiers(config, name));
  if (name == "format" || name == "language") {
    check_fields(config, name, {"name"});
    if (name == "format") return std::make_unique<FormatReward>();
    return std::make_unique<LanguageConsistencyReward>();
  }
  if (name == "sum") {
    check_fields(config, name, {"name", "terms"});
    auto t = config.find("terms");
    if (t == config.end() || !t->is_array())
      fail("reward \"sum\": field \"terms\" must be an array");
    std::vector<std::pair<double, std::unique_ptr<Reward>>> terms;
    for (const auto& term : *t) {
      if (!term.is_object() || !term.contains("reward"))
        fail("reward \"sum\": each term is {{\"reward\": ..., \"weight\": w}}, got {}",
             term.dump());
      check_fields(term, "sum", {"reward", "weight"});
      terms.emplace_back(number_field(term, "sum", "weight", 1.0), make_reward(term["reward"]));
    }
    return std::make_unique<WeightedSumReward>(std::move(terms));
  }
  if (name == "rm") {
    check_fields(config, name, {"name", "model", "weight"});
    auto m = config.find("model");
    if (m == config.end() || !m->is_string())
      fail("reward \"rm\": field \"model\" (the `seek rm` checkpoint directory) is missing or not a string");
    return std::make_unique<RewardModelReward>(RewardModel::load(m->get<std::string>()),
                                               number_field(config, name, "weight", 1.0));
  }
  fail("reward config: unknown reward \"{}\" (known: countdown, arithmetic, format, language, sum, rm)",
       name);
}

}  // namespace seek::rl
