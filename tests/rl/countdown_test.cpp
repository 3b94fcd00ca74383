// The exact expression checker, the Countdown solver, generator, prompt and reward.
#include "rl/countdown.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "rl/expr.h"

using namespace seek;
using namespace seek::rl;

namespace {

Rational value_of(std::string_view text) {
  ExprResult r = evaluate_expression(text);
  EXPECT_TRUE(r.ok) << text << ": " << r.error;
  return r.value;
}

std::string error_of(std::string_view text) {
  ExprResult r = evaluate_expression(text);
  EXPECT_FALSE(r.ok) << text << " parsed as " << r.value.str();
  return r.error;
}

}  // namespace

TEST(Expr, PrecedenceAndAssociativity) {
  EXPECT_EQ(value_of("2+3*4"), (Rational{14, 1}));
  EXPECT_EQ(value_of("(2+3)*4"), (Rational{20, 1}));
  EXPECT_EQ(value_of("10-4-3"), (Rational{3, 1}));  // left to right, not 10-(4-3)
  EXPECT_EQ(value_of("24/4/2"), (Rational{3, 1}));
  EXPECT_EQ(value_of("2*3-8/4"), (Rational{4, 1}));
  EXPECT_EQ(value_of("((((5))))"), (Rational{5, 1}));
}

TEST(Expr, WhitespaceAnywhereBetweenTokens) {
  EXPECT_EQ(value_of("2*3"), value_of(" 2 * 3 "));
  EXPECT_EQ(value_of("( 19 +\t36 )\n- 55 + 7"), (Rational{7, 1}));
  EXPECT_EQ(error_of("1 9 + 36"), "unexpected '9' at 2");  // a space splits a literal
}

TEST(Expr, ExactRationals) {
  EXPECT_EQ(value_of("(7/2)*2"), (Rational{7, 1}));
  EXPECT_EQ(value_of("7/2"), (Rational{7, 2}));
  EXPECT_EQ(value_of("1/3+1/6"), (Rational{1, 2}));
  EXPECT_EQ(value_of("6/(1-5/7)"), (Rational{21, 1}));
  EXPECT_EQ(value_of("3-10"), (Rational{-7, 1}));
  EXPECT_EQ(value_of("3-10").str(), "-7");
  EXPECT_EQ(value_of("1-7/2").str(), "-5/2");
}

TEST(Expr, LiteralsInWrittenOrder) {
  ExprResult r = evaluate_expression("(55 - 36) * 7 / 19");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.literals, (std::vector<int64_t>{55, 36, 7, 19}));
}

TEST(Expr, RejectsWhatIsNotTheGrammar) {
  EXPECT_EQ(error_of(""), "empty expression");
  EXPECT_EQ(error_of("   "), "empty expression");
  EXPECT_EQ(error_of("-3+5"), "unexpected '-' at 0");  // no unary minus
  EXPECT_EQ(error_of("3*-2"), "unexpected '-' at 2");
  EXPECT_EQ(error_of("+3"), "unexpected '+' at 0");
  EXPECT_EQ(error_of("3+"), "expression ends early");
  EXPECT_EQ(error_of("(3+4"), "missing ')'");
  EXPECT_EQ(error_of("3+4)"), "unexpected ')' at 3");
  EXPECT_EQ(error_of("()"), "unexpected ')' at 1");
  EXPECT_EQ(error_of("2^3"), "unexpected '^' at 1");
  EXPECT_EQ(error_of("2x3"), "unexpected 'x' at 1");
  EXPECT_EQ(error_of("2(3)"), "unexpected '(' at 1");  // no implicit multiplication
  EXPECT_EQ(error_of("1.5*2"), "unexpected '.' at 1");
  EXPECT_EQ(error_of("19 + 36 = 55"), "unexpected '=' at 8");
  EXPECT_EQ(error_of("3\xc3\x97"
                     "4"),
            "unexpected byte 0xc3 at 1");  // 3×4
  EXPECT_EQ(error_of("07 + 1"), "number with a leading zero: 07");
  EXPECT_EQ(value_of("0 + 1"), (Rational{1, 1}));  // zero itself is fine
}

TEST(Expr, DivisionByZeroIsAnError) {
  EXPECT_EQ(error_of("5/0"), "division by zero");
  EXPECT_EQ(error_of("5/(3-3)"), "division by zero");
  EXPECT_EQ(error_of("5/(1/2-1/2)"), "division by zero");
}

TEST(Expr, HugeNumbersAreTooLargeNotWrapped) {
  EXPECT_EQ(value_of("999999999999999999"), (Rational{999999999999999999, 1}));
  EXPECT_EQ(error_of("9999999999999999999"), "number too large");
  EXPECT_EQ(error_of("999999999999999999*999999999999999999"), "value too large");
  EXPECT_EQ(error_of("999999999999999999*10"), "value too large");
  EXPECT_EQ(error_of("1/999999999999999999/999999999999999999"), "value too large");
  EXPECT_EQ(value_of("999999999999999999*9"), (Rational{8999999999999999991, 1}));
}

TEST(Expr, HostileNestingIsRejectedNotACrash) {
  std::string deep(10000, '(');
  deep += "1" + std::string(10000, ')');
  EXPECT_EQ(error_of(deep), "longer than 1024 characters");
  // Within the length limit the nesting depth is what stops it.
  auto nested = [](int d) {
    return std::string(static_cast<size_t>(d), '(') + "1" +
           std::string(static_cast<size_t>(d), ')');
  };
  EXPECT_EQ(value_of(nested(kMaxExprDepth)), (Rational{1, 1}));
  EXPECT_EQ(error_of(nested(kMaxExprDepth + 1)), "parentheses nested deeper than 64");
  EXPECT_EQ(error_of(std::string(500, '(')), "parentheses nested deeper than 64");
  std::string sum = "1";
  while (sum.size() < kMaxExprChars) sum += "+1";
  EXPECT_EQ(error_of(sum), "longer than 1024 characters");
  EXPECT_EQ(value_of(sum.substr(0, kMaxExprChars - 1)), (Rational{512, 1}));
}

TEST(Rational, CheckedOperations) {
  EXPECT_EQ(*add({1, 2}, {1, 3}), (Rational{5, 6}));
  EXPECT_EQ(*sub({1, 2}, {1, 2}), (Rational{0, 1}));
  EXPECT_EQ(*mul({2, 3}, {3, 4}), (Rational{1, 2}));
  EXPECT_EQ(*div({1, 2}, {-1, 4}), (Rational{-2, 1}));  // the sign moves to the numerator
  EXPECT_FALSE(div({1, 2}, {0, 1}));
  EXPECT_FALSE(mul({INT64_MAX, 1}, {2, 1}));
  EXPECT_FALSE(sub({INT64_MIN + 1, 1}, {2, 1}));
}

TEST(Countdown, PromptIsTinyZerosText) {
  const std::vector<int> numbers = {19, 36, 55, 7};
  EXPECT_EQ(
      countdown_prompt(numbers, 65),
      "Using the numbers [19, 36, 55, 7], create an equation that equals 65. You can use basic "
      "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work "
      "in <think> </think> tags. And return the final answer in <answer> </answer> tags, for "
      "example <answer> (1 + 2) / 3 </answer>.");
}

TEST(Countdown, SolverFindsTheExamplesSolution) {
  const std::vector<int> numbers = {19, 36, 55, 7};
  std::optional<std::string> s = solve_countdown(numbers, 65);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "36 - 19 + 55 - 7");  // pinned: the SFT traces are built from it
  EXPECT_EQ(countdown_mistake(*s, numbers, 65), std::nullopt) << *s;
  EXPECT_EQ(value_of(*s), (Rational{65, 1}));
  // A solution found by hand agrees with the checker: 55 + 36 - 7 - 19 = 65.
  EXPECT_EQ(countdown_mistake("55 + 36 - 7 - 19", numbers, 65), std::nullopt);
}

TEST(Countdown, SolverNeedsRationalsAndKnowsTheUnreachable) {
  const std::vector<int> numbers = {1, 5, 6, 7};
  std::optional<std::string> s = solve_countdown(numbers, 21);  // 6 / (1 - 5/7)
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "6 / (1 - 5 / 7)");  // no solution over integers only: the fraction pass finds it
  EXPECT_EQ(countdown_mistake(*s, numbers, 21), std::nullopt) << *s;
  const std::vector<int> ones = {1, 1, 1};
  EXPECT_EQ(solve_countdown(ones, 4), std::nullopt);  // at most 1 + 1 + 1
  EXPECT_TRUE(solve_countdown(ones, 3));
  EXPECT_EQ(solve_countdown(std::vector<int>{}, 3), std::nullopt);
}

TEST(Countdown, EachNumberExactlyOnce) {
  const std::vector<int> numbers = {19, 36, 55, 7};
  EXPECT_EQ(countdown_mistake("55 + 36 - 19", numbers, 72), "does not use 7");
  EXPECT_EQ(countdown_mistake("55 + 36 - 7 - 7 + 7 - 19", numbers, 65), "uses 7 3 times, given 1");
  EXPECT_EQ(countdown_mistake("55 + 36 - 7 - 19 + 0", numbers, 65), "uses 0, which is not given");
  EXPECT_EQ(countdown_mistake("55 + 36 - 7 - 20 + 1", numbers, 65), "uses 1, which is not given");
  EXPECT_EQ(countdown_mistake("55 + 36 + 7 - 19", numbers, 65), "equals 79, not 65");
  EXPECT_EQ(countdown_mistake("55 + 36 - 7 - 19 = 65", numbers, 65),
            "answer is not an expression: unexpected '=' at 17");
  // A number given twice must be used twice.
  const std::vector<int> twice = {5, 5, 3};
  EXPECT_EQ(countdown_mistake("5 * 5 - 3", twice, 22), std::nullopt);
  EXPECT_EQ(countdown_mistake("5 * 3 + 7", twice, 22), "uses 7, which is not given");
  EXPECT_EQ(countdown_mistake("5 * 3", twice, 15), "uses 5 only 1 of 2 times");
  EXPECT_EQ(countdown_mistake("5 + 5", twice, 10), "does not use 3");
}

namespace {

RewardResult countdown_score(std::string_view completion, const Reward& r = CountdownReward()) {
  const std::vector<int> numbers = {19, 36, 55, 7};
  const nlohmann::json task = {{"numbers", numbers}, {"target", 65}};
  return r.score({countdown_prompt(numbers, 65), completion, task});
}

}  // namespace

TEST(Countdown, RewardValues) {
  RewardResult ok =
      countdown_score("<think>55+36=91, 91-26=65</think>\n<answer>(55 + 36) - (7 + 19)</answer>");
  EXPECT_EQ(ok.reward, 1.0);
  EXPECT_TRUE(ok.correct);
  EXPECT_EQ(ok.reason, "correct");

  RewardResult wrong = countdown_score("<think>hm</think> <answer>55 + 36 + 7 - 19</answer>");
  EXPECT_EQ(wrong.reward, 0.1);
  EXPECT_FALSE(wrong.correct);
  EXPECT_EQ(wrong.reason, "equals 79, not 65");

  RewardResult nothing = countdown_score("The answer is 65.");
  EXPECT_EQ(nothing.reward, 0.0);
  EXPECT_EQ(nothing.reason, "no <answer>…</answer>; no <think>");

  // Correct without the format still counts as correct (TinyZero); wrong and unformatted is 0.
  EXPECT_EQ(countdown_score("<answer>55 + 36 - 7 - 19</answer>").reward, 1.0);
  EXPECT_EQ(countdown_score("<answer>55 + 36</answer>").reward, 0.0);

  CountdownReward custom(TierValues{2.0, 0.0});
  EXPECT_EQ(countdown_score("<think></think><answer>55 + 36 - 7 - 19</answer>", custom).reward,
            2.0);
  EXPECT_EQ(countdown_score("<think></think><answer>55</answer>", custom).reward, 0.0);
}

TEST(Countdown, TheLastAnswerCounts) {
  EXPECT_FALSE(countdown_score("<answer>55 + 36 - 7 - 19</answer> <answer>1</answer>").correct);
  EXPECT_TRUE(countdown_score("<answer>1</answer> <answer>55 + 36 - 7 - 19</answer>").correct);
  // A draft inside the thinking is overridden by the final answer; a correct draft followed by
  // a wrong final answer is wrong, and without the format it earns nothing.
  RewardResult r =
      countdown_score("<think><answer>1</answer></think><answer>55 + 36 - 7 - 19</answer>");
  EXPECT_TRUE(r.correct);
  RewardResult draft =
      countdown_score("<think><answer>55 + 36 - 7 - 19</answer></think><answer>1</answer>");
  EXPECT_FALSE(draft.correct);
  EXPECT_EQ(draft.reward, 0.0);
  EXPECT_EQ(draft.reason, "uses 1, which is not given; <answer> inside <think>");
  // An unclosed last <answer> does not hide the last complete one.
  EXPECT_TRUE(countdown_score("<answer>55 + 36 - 7 - 19</answer> <answer>1").correct);
}

TEST(Countdown, BrokenTaskRecordsThrowNamingTheField) {
  CountdownReward r;
  auto score = [&](const nlohmann::json& task) {
    return r.score({"p", "<answer>1</answer>", task});
  };
  EXPECT_THROW(score({{"target", 65}}), Error);
  EXPECT_THROW(score({{"numbers", {1, "2"}}, {"target", 65}}), Error);
  EXPECT_THROW(score({{"numbers", {1, 2}}}), Error);
  try {
    score({{"numbers", {1, 2}}, {"target", "65"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "countdown task: field \"target\" must be an integer");
  }
}

TEST(Countdown, TaskRecordJson) {
  CountdownProblem p{{19, 36, 55, 7}, 65, "55 + 36 - 7 - 19"};
  EXPECT_EQ(p.to_json().dump(),
            R"j({"numbers":[19,36,55,7],"solution":"55 + 36 - 7 - 19","target":65})j");
  CountdownProblem q = CountdownProblem::from_json(p.to_json());
  EXPECT_EQ(q.numbers, p.numbers);
  EXPECT_EQ(q.target, p.target);
  EXPECT_EQ(q.solution, p.solution);
}

TEST(CountdownGenerator, DeterministicForASeed) {
  CountdownGenerator a(42), b(42), c(43);
  std::vector<nlohmann::json> first;
  bool differs = false;
  for (int i = 0; i < 20; ++i) {
    CountdownProblem pa = a.next(), pb = b.next(), pc = c.next();
    EXPECT_EQ(pa.to_json(), pb.to_json());
    differs |= pa.to_json() != pc.to_json();
    if (i < 3) first.push_back(pa.to_json());
  }
  EXPECT_TRUE(differs);
  // Pinned: the same problems on every platform and standard library.
  EXPECT_EQ(first[0].dump(), R"j({"numbers":[36,59,12],"solution":"59 + 36 - 12","target":83})j");
  EXPECT_EQ(first[1].dump(), R"j({"numbers":[52,65,2],"solution":"65 - (52 - 2)","target":15})j");
  EXPECT_EQ(first[2].dump(), R"j({"numbers":[98,10,72],"solution":"72 * 10 - 98","target":622})j");
}

TEST(CountdownGenerator, EveryProblemIsSolvedByItsSolution) {
  CountdownGenerator g(7);
  int three = 0, four = 0;
  for (int i = 0; i < 300; ++i) {
    CountdownProblem p = g.next();
    ASSERT_TRUE(p.numbers.size() == 3 || p.numbers.size() == 4);
    (p.numbers.size() == 3 ? three : four)++;
    for (int n : p.numbers) ASSERT_TRUE(n >= 1 && n <= 99) << n;
    ASSERT_TRUE(p.target >= 1 && p.target <= 999) << p.target;
    ASSERT_EQ(countdown_mistake(p.solution, p.numbers, p.target), std::nullopt)
        << p.to_json().dump();
    ASSERT_TRUE(solve_countdown(p.numbers, p.target)) << p.to_json().dump();
  }
  EXPECT_GT(three, 100);
  EXPECT_GT(four, 100);
}

TEST(CountdownGenerator, RejectsImpossibleOptions) {
  EXPECT_THROW(CountdownGenerator(1, CountdownOptions{.min_count = 1}), Error);
  EXPECT_THROW(CountdownGenerator(1, CountdownOptions{.min_count = 4, .max_count = 3}), Error);
  EXPECT_THROW(CountdownGenerator(1, CountdownOptions{.max_number = 0}), Error);
  EXPECT_THROW(CountdownGenerator(1, CountdownOptions{.max_target = 0}), Error);
}
