// The R1 format rule, the arithmetic and language-consistency rewards, the weighted sum and the
// config factory.
#include "rl/rewards.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "rl/countdown.h"

using namespace seek;
using namespace seek::rl;

namespace {

FormatCheck fmt_check(std::string_view completion, std::string_view prompt = "Solve 1 + 1.") {
  return check_format(prompt, completion);
}

std::string throw_message(const nlohmann::json& config) {
  try {
    make_reward(config);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Format, TheR1Shape) {
  EXPECT_TRUE(fmt_check("<think>1 and 1</think><answer>2</answer>").ok);
  EXPECT_TRUE(fmt_check("\n <think>\n1 and 1\n</think>\nSo:\n<answer> 2 </answer>\n").ok);
  EXPECT_EQ(fmt_check("<think>1 and 1</think><answer>2</answer>").reason, "format ok");
}

TEST(Format, EdgeCases) {
  EXPECT_EQ(fmt_check("<answer>2</answer>").reason, "no <think>");
  EXPECT_EQ(fmt_check("Sure. <think>x</think><answer>2</answer>").reason,
            "does not start with <think>");
  EXPECT_EQ(fmt_check("<think>x<answer>2</answer>").reason, "no </think>");
  EXPECT_EQ(fmt_check("<think>a<think>b</think></think><answer>2</answer>").reason,
            "more than one <think>");
  EXPECT_EQ(fmt_check("<think>a</think><think>b</think><answer>2</answer>").reason,
            "more than one <think>");
  EXPECT_EQ(fmt_check("<think>a</think></think><answer>2</answer>").reason,
            "more than one </think>");
  EXPECT_EQ(fmt_check("<think>a</think>2").reason, "no <answer>");
  EXPECT_EQ(fmt_check("<think>a</think><answer>2").reason, "no </answer>");
  EXPECT_EQ(fmt_check("<think>a</think><answer>1</answer><answer>2</answer>").reason,
            "more than one <answer>");
  EXPECT_EQ(fmt_check("<think><answer>2</answer></think>").reason, "<answer> inside <think>");
  EXPECT_EQ(fmt_check("<think>a<answer></think>2</answer>").reason, "<answer> inside <think>");
  EXPECT_EQ(fmt_check("<think>a</think></answer>2<answer>").reason, "</answer> before <answer>");
  EXPECT_EQ(fmt_check("<think>a</think><answer> \n </answer>").reason, "empty <answer>");
  EXPECT_EQ(fmt_check("<think>a</think><answer>2</answer> Hope this helps!").reason,
            "text after </answer>");
  EXPECT_EQ(fmt_check("").reason, "no <think>");
}

TEST(Format, ThinkingOpenedByThePrompt) {
  const std::string prompt = "User: 1 + 1?\nAssistant: Let me solve this step by step.\n<think>\n";
  EXPECT_TRUE(fmt_check("1 and 1 make 2</think><answer>2</answer>", prompt).ok);
  EXPECT_EQ(fmt_check("<think>again</think><answer>2</answer>", prompt).reason,
            "more than one <think>");
  EXPECT_EQ(fmt_check("1 and 1 make 2<answer>2</answer>", prompt).reason, "no </think>");
}

TEST(Format, Reward) {
  FormatReward r;
  const nlohmann::json task = nlohmann::json::object();
  EXPECT_EQ(r.score({"q", "<think>a</think><answer>2</answer>", task}).reward, 1.0);
  RewardResult bad = r.score({"q", "<answer>2</answer>", task});
  EXPECT_EQ(bad.reward, 0.0);
  EXPECT_FALSE(bad.correct);
  EXPECT_EQ(bad.reason, "no <think>");
}

TEST(Format, LastAnswer) {
  EXPECT_EQ(last_answer("<answer> 1 </answer>"), "1");
  EXPECT_EQ(last_answer("<answer>1</answer><answer>2</answer>"), "2");
  EXPECT_EQ(last_answer("<answer>1</answer><answer>2"), "1");
  EXPECT_EQ(last_answer("<answer>1<answer>2</answer>"), "2");
  EXPECT_EQ(last_answer("<answer></answer>"), "");
  EXPECT_EQ(last_answer("1</answer>"), std::nullopt);
  EXPECT_EQ(last_answer("no tags"), std::nullopt);
}

TEST(Arithmetic, ParseNumber) {
  EXPECT_EQ(parse_number("84"), (Rational{84, 1}));
  EXPECT_EQ(parse_number(" -84 "), (Rational{-84, 1}));
  EXPECT_EQ(parse_number("7/2"), (Rational{7, 2}));
  EXPECT_EQ(parse_number("14/4"), (Rational{7, 2}));
  EXPECT_EQ(parse_number("-7/2"), (Rational{-7, 2}));
  EXPECT_EQ(parse_number("3.50"), (Rational{7, 2}));
  EXPECT_EQ(parse_number("0.1"), (Rational{1, 10}));
  EXPECT_EQ(parse_number("-0.25"), (Rational{-1, 4}));
  for (const char* bad : {"", "-", "84.", ".5", "1/0", "1e3", "x = 84", "- 3", "+3", "1/2/3",
                          "1.5/2", "84!", "1234567890123456789"})
    EXPECT_EQ(parse_number(bad), std::nullopt) << bad;
}

namespace {

RewardResult arith(std::string_view completion, const nlohmann::json& task) {
  return ArithmeticReward().score({"What is 12*(3+4)?", completion, task});
}

}  // namespace

TEST(Arithmetic, RewardTiersAndTaskForms) {
  const nlohmann::json by_expr = {{"expression", "12*(3+4)"}};
  EXPECT_EQ(arith("<think>12*7</think><answer>84</answer>", by_expr).reward, 1.0);
  RewardResult wrong = arith("<think>12*7</think><answer>83</answer>", by_expr);
  EXPECT_EQ(wrong.reward, 0.1);
  EXPECT_EQ(wrong.reason, "answer 83 is not 84");
  EXPECT_EQ(arith("<think>x</think><answer>eighty-four</answer>", by_expr).reason,
            "answer is not a number");
  EXPECT_EQ(arith("84", by_expr).reward, 0.0);
  EXPECT_EQ(arith("<answer>84</answer>", {{"answer", 84}}).reward, 1.0);
  EXPECT_EQ(arith("<answer>84</answer>", {{"answer", "84"}, {"expression", "12*(3+4)"}}).reward,
            1.0);
  // Exact equality across the written forms.
  EXPECT_TRUE(arith("<answer>3/2</answer>", {{"answer", "1.5"}}).correct);
  EXPECT_TRUE(arith("<answer>6/4</answer>", {{"expression", "3/2"}}).correct);
  EXPECT_FALSE(arith("<answer>1.5000001</answer>", {{"answer", "3/2"}}).correct);
  EXPECT_FALSE(
      arith("<answer>84</answer><answer>85</answer>", {{"answer", 84}}).correct);  // the last
}

TEST(Arithmetic, BrokenTaskRecordsThrow) {
  EXPECT_THROW(arith("<answer>1</answer>", nlohmann::json::object()), Error);
  EXPECT_THROW(arith("<answer>1</answer>", {{"answer", 1.5}}), Error);
  EXPECT_THROW(arith("<answer>-1</answer>", {{"answer", UINT64_MAX}}), Error);
  EXPECT_THROW(arith("<answer>1</answer>", {{"expression", "1+"}}), Error);
  try {
    ArithmeticReward::task_answer({{"answer", "85"}, {"expression", "12*(3+4)"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "arithmetic task: \"expression\" equals 84 but \"answer\" is 85");
  }
}

TEST(Language, ScriptOf) {
  EXPECT_EQ(script_of(U'a'), Script::Latin);
  EXPECT_EQ(script_of(U'é'), Script::Latin);
  EXPECT_EQ(script_of(U'7'), Script::None);
  EXPECT_EQ(script_of(U'×'), Script::None);
  EXPECT_EQ(script_of(U'。'), Script::None);
  EXPECT_EQ(script_of(U'中'), Script::Han);
  EXPECT_EQ(script_of(U'の'), Script::Han);
  EXPECT_EQ(script_of(U'한'), Script::Hangul);
  EXPECT_EQ(script_of(U'я'), Script::Cyrillic);
  EXPECT_EQ(script_of(U'ع'), Script::Arabic);
  EXPECT_EQ(script_of(U'٣'), Script::None);  // Arabic-Indic digit
  EXPECT_EQ(script_of(U'α'), Script::Greek);
  EXPECT_EQ(script_of(U'ა'), Script::Other);  // Georgian
  EXPECT_EQ(script_of(U'😀'), Script::None);
}

namespace {

RewardResult lang(std::string_view prompt, std::string_view completion) {
  return LanguageConsistencyReward().score({prompt, completion, nlohmann::json::object()});
}

}  // namespace

TEST(Language, ShareOfLettersInThePromptsScript) {
  EXPECT_EQ(lang("What is 2+2?", "<think>Two and two.</think><answer>4</answer>").reward, 1.0);
  // Chinese prompt: the tags' Latin letters and the digits do not count.
  RewardResult zh = lang("二加二等于多少？", "<think>二加二</think><answer>4</answer>");
  EXPECT_EQ(zh.reward, 1.0);
  EXPECT_TRUE(zh.correct);
  // 4 Han letters and 4 Latin ones: half.
  RewardResult mixed = lang("二加二等于多少？", "<think>二加二 okay</think><answer>是4</answer>");
  EXPECT_DOUBLE_EQ(mixed.reward, 0.5);
  EXPECT_FALSE(mixed.correct);
  EXPECT_EQ(mixed.reason, "0.50 of the letters in Han");
  EXPECT_DOUBLE_EQ(lang("Сколько будет два плюс два?", "Четыре, four").reward, 6.0 / 10.0);
  EXPECT_EQ(lang("Сколько будет два плюс два?", "Четыре, four").reason,
            "0.60 of the letters in Cyrillic");
}

TEST(Language, NoLettersAndBrokenUtf8) {
  EXPECT_EQ(lang("2+2?", "four").reason, "prompt has no letters");
  EXPECT_EQ(lang("What?", "<answer>4</answer>").reason, "completion has no letters");
  // Stray bytes and truncated sequences are skipped, not read past.
  RewardResult r = lang("abc", std::string("ab\xff\xc3") + "\xe4\xb8");
  EXPECT_EQ(r.reward, 1.0);
  EXPECT_EQ(lang("abc", "ab\xe4\xb8\xadz").reward, 0.75);  // 中 is one letter of four
}

TEST(RewardFactory, BuildsEachRewardByName) {
  EXPECT_EQ(make_reward("countdown")->name(), "countdown");
  EXPECT_EQ(make_reward({{"name", "arithmetic"}})->name(), "arithmetic");
  EXPECT_EQ(make_reward("format")->name(), "format");
  EXPECT_EQ(make_reward("language")->name(), "language");
  // Tier values from the config reach the reward.
  const std::vector<int> numbers = {19, 36, 55, 7};
  const nlohmann::json task = {{"numbers", numbers}, {"target", 65}};
  const std::string prompt = countdown_prompt(numbers, 65);
  auto strict = make_reward({{"name", "countdown"}, {"correct", 3.0}, {"format", 0}});
  EXPECT_EQ(strict->score({prompt, "<think>a</think><answer>1</answer>", task}).reward, 0.0);
  EXPECT_EQ(strict->score({prompt, "<think>a</think><answer>55+36-7-19</answer>", task}).reward,
            3.0);
}

TEST(RewardFactory, WeightedSum) {
  auto sum = make_reward({{"name", "sum"},
                          {"terms",
                           {{{"reward", {{"name", "countdown"}, {"format", 0}}}, {"weight", 1.0}},
                            {{"reward", "format"}, {"weight", 0.1}}}}});
  EXPECT_EQ(sum->name(), "sum");
  const std::vector<int> numbers = {19, 36, 55, 7};
  const nlohmann::json task = {{"numbers", numbers}, {"target", 65}};
  const std::string prompt = countdown_prompt(numbers, 65);
  RewardResult both = sum->score({prompt, "<think>a</think><answer>55+36-7-19</answer>", task});
  EXPECT_DOUBLE_EQ(both.reward, 1.1);
  EXPECT_TRUE(both.correct);
  EXPECT_EQ(both.reason, "countdown: correct; format: format ok");
  RewardResult format_only = sum->score({prompt, "<think>a</think><answer>1</answer>", task});
  EXPECT_DOUBLE_EQ(format_only.reward, 0.1);
  EXPECT_FALSE(format_only.correct);  // the first term decides
  RewardResult unformatted = sum->score({prompt, "<answer>55+36-7-19</answer>", task});
  EXPECT_DOUBLE_EQ(unformatted.reward, 1.0);
  EXPECT_TRUE(unformatted.correct);
}

TEST(RewardFactory, ClearErrors) {
  EXPECT_EQ(throw_message("bleu"),
            "reward config: unknown reward \"bleu\" (known: countdown, arithmetic, format, "
            "language, sum, rm)");
  EXPECT_EQ(throw_message({{"name", "countdown"}, {"corect", 1.0}}),
            "reward \"countdown\": unknown field \"corect\" (known: name, correct, format)");
  EXPECT_EQ(throw_message({{"name", "format"}, {"weight", 1.0}}),
            "reward \"format\": unknown field \"weight\" (known: name)");
  EXPECT_EQ(throw_message({{"name", "countdown"}, {"correct", "1"}}),
            "reward \"countdown\": field \"correct\" must be a number, got \"1\"");
  EXPECT_EQ(throw_message({{"correct", 1.0}}),
            "reward config: field \"name\" (a string) is missing in {\"correct\":1.0}");
  EXPECT_EQ(throw_message(3), "reward config: expected a name or an object, got 3");
  EXPECT_EQ(throw_message({{"name", "sum"}}), "reward \"sum\": field \"terms\" must be an array");
  EXPECT_EQ(throw_message({{"name", "sum"}, {"terms", nlohmann::json::array()}}),
            "reward \"sum\": needs at least one term");
  EXPECT_EQ(throw_message({{"name", "sum"}, {"terms", {{{"reward", "format"}, {"wieght", 1}}}}}),
            "reward \"sum\": unknown field \"wieght\" (known: reward, weight)");
  EXPECT_EQ(throw_message({{"name", "sum"}, {"terms", {{{"reward", "nope"}}}}}),
            "reward config: unknown reward \"nope\" (known: countdown, arithmetic, format, "
            "language, sum, rm)");
}

// Model text never makes a reward throw: random completions built from the pieces the parsers
// look at (tags, digits, operators, parentheses, stray UTF-8 bytes) all score within range.
TEST(RewardFactory, RandomCompletionsNeverThrow) {
  const std::vector<std::string> pieces = {
      "<think>", "</think>", "<answer>", "</answer>", "19", "36", "55", "7", "0", "+", "-", "*",
      "/", "(", ")", " ", "\n", "=", "x", "\xe4\xb8\xad", "\xff", "\xc3", "1.5"};
  const std::vector<int> numbers = {19, 36, 55, 7};
  const nlohmann::json task = {{"numbers", numbers}, {"target", 65}, {"answer", "7/2"}};
  const std::string prompt = countdown_prompt(numbers, 65);
  std::vector<std::unique_ptr<Reward>> rewards;
  for (const char* name : {"countdown", "arithmetic", "format", "language"})
    rewards.push_back(make_reward(name));
  std::mt19937_64 rng(1);
  for (int i = 0; i < 3000; ++i) {
    std::string completion;
    const size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) completion += pieces[rng() % pieces.size()];
    for (const auto& r : rewards) {
      RewardResult res;
      ASSERT_NO_THROW(res = r->score({prompt, completion, task})) << completion;
      ASSERT_GE(res.reward, 0.0);
      ASSERT_LE(res.reward, 1.0);
      ASSERT_FALSE(res.reason.empty());
      if (r->name() == "countdown" || r->name() == "arithmetic") {
        ASSERT_TRUE(res.reward == 0.0 || res.reward == 0.1 || res.reward == 1.0) << res.reward;
      }
    }
  }
}
