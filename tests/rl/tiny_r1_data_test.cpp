// The tiny-R1 data (`seek make-data`): the trace search, the SFT records, the corpus mix and the
// digit-level tokenizer.
#include "rl/tiny_r1_data.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <regex>
#include <set>

#include "rl/answer_format.h"
#include "rl/eval.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

using namespace seek;
using namespace seek::rl;

namespace {

std::vector<int> ints(const std::string& list) {
  std::vector<int> out;
  const std::regex number("[0-9]+");
  for (std::sregex_iterator it(list.begin(), list.end(), number), end; it != end; ++it)
    out.push_back(std::stoi(it->str()));
  return out;
}

// The problem a text states in the task's wording ("numbers [..] ... equals N."), or none.
std::optional<CountdownProblem> stated_problem(const std::string& text) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(numbers \[([0-9, ]+)\].* equals ([0-9]+)\.)")))
    return std::nullopt;
  CountdownProblem p;
  p.numbers = ints(m[1]);
  p.target = std::stoi(m[2]);
  return p;
}

// The problem a record's prompt states, read back from the prompt text alone.
CountdownProblem problem_of(const nlohmann::json& record) {
  const std::string prompt = record["messages"][0]["content"].get<std::string>();
  const std::optional<CountdownProblem> p = stated_problem(prompt);
  EXPECT_TRUE(p) << prompt;
  if (!p) return {};
  EXPECT_EQ(prompt, countdown_prompt(p->numbers, p->target));
  return *p;
}

// The paragraphs of a corpus: blank-line separated, except the blank line a chat paragraph has
// between </think> and <answer>.
std::vector<std::string> paragraphs(const std::string& corpus) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < corpus.size()) {
    size_t end = corpus.find("\n\n", start);
    while (end != std::string::npos && corpus.compare(end + 2, 7, "<answer") == 0)
      end = corpus.find("\n\n", end + 2);
    if (end == std::string::npos) end = corpus.size();
    out.push_back(corpus.substr(start, end + 1 - start));
    start = end + 2;
  }
  return out;
}

}  // namespace

TEST(TinyR1Trace, PinnedFormat) {
  // Three numbers: the first pair, larger first, + first; found on the first line.
  auto t = countdown_trace({{19, 36, 7}, 62, ""});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->reasoning, "36+19=55: 55+7=62");
  EXPECT_EQ(t->answer, "36 + 19 + 7");
  EXPECT_EQ(t->lines, 1);
  EXPECT_EQ(trace_completion(*t),
            "<think>\n36+19=55: 55+7=62\n</think>\n\n<answer> 36 + 19 + 7 </answer>");

  t = countdown_trace({{51, 78, 84}, 57, ""});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->reasoning, "78+51=129: 129+84=213, 129-84=45\n78-51=27: 84+27=111, 84-27=57");
  EXPECT_EQ(t->answer, "84 - (78 - 51)");

  // A product above 999 is not computed in the final step; a division only when exact.
  t = countdown_trace({{40, 50, 2}, 45, ""});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->reasoning, "50+40=90: 90+2=92, 90-2=88, 90*2=180, 90/2=45");
  EXPECT_EQ(t->answer, "(50 + 40) / 2");

  // Four numbers: the first combination that leaves a solvable three, then the search.
  t = countdown_trace({{10, 40, 1, 99}, 70, ""});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->reasoning,
            "40-10=30, left 30 1 99\n30+1=31: 99+31=130, 99-31=68\n30-1=29: 99+29=128, 99-29=70");
  EXPECT_EQ(t->answer, "99 - (40 - 10 - 1)");

  EXPECT_FALSE(countdown_trace({{2, 3, 5}, 999, ""}));  // unreachable
  EXPECT_FALSE(countdown_trace({{1, 2}, 3, ""}));        // only 3 or 4 numbers
}

TEST(TinyR1Trace, FindsEveryGeneratedThreeNumberProblem) {
  // The generator's solutions stay in the positive integers without * 1 or / 1, which is exactly
  // the space the three-value search covers, so every such problem has a trace of <= 12 lines.
  CountdownGenerator gen(7, {.min_count = 3, .max_count = 3});
  for (int i = 0; i < 500; ++i) {
    const CountdownProblem p = gen.next();
    const auto t = countdown_trace(p, 12);
    ASSERT_TRUE(t) << nlohmann::json(p.numbers).dump() << " -> " << p.target << " (" << p.solution << ")";
    EXPECT_FALSE(countdown_mistake(t->answer, p.numbers, p.target));
  }
}

TEST(TinyR1Traces, DeterministicVerifiedTrainingSplitOnly) {
  TraceSetStats st;
  const std::vector<nlohmann::json> a = make_sft_traces(3, 400, 12, &st);
  EXPECT_EQ(a, make_sft_traces(3, 400, 12));
  EXPECT_NE(a, make_sft_traces(4, 400, 12));
  ASSERT_EQ(a.size(), 400u);
  EXPECT_EQ(st.kept, 400);
  EXPECT_GT(st.eval_split, 0);  // the held-out problems were drawn and skipped
  const CountdownReward reward;
  std::set<std::pair<std::vector<int>, int>> seen;
  for (const nlohmann::json& r : a) {
    ASSERT_EQ(r["messages"].size(), 2u);
    const nlohmann::json& asst = r["messages"][1];
    EXPECT_EQ(asst["role"], "assistant");
    const CountdownProblem p = problem_of(r);
    EXPECT_EQ(countdown_split(p), CountdownSplit::Train) << r.dump();
    std::vector<int> key = p.numbers;
    std::sort(key.begin(), key.end());
    EXPECT_TRUE(seen.insert({key, p.target}).second) << "repeated problem " << r.dump();
    // The completion the model is taught, scored by the reward GRPO and `seek eval` use.
    const std::string completion = "<think>\n" + asst["reasoning_content"].get<std::string>() +
                                   "\n</think>\n\n" + asst["content"].get<std::string>();
    const std::string prompt = r["messages"][0]["content"].get<std::string>();
    const nlohmann::json task = p.to_json();
    const RewardResult s = reward.score({prompt, completion, task});
    EXPECT_TRUE(s.correct) << completion << ": " << s.reason;
    EXPECT_TRUE(check_format(prompt, completion).ok) << completion;
  }
}

TEST(TinyR1Corpus, DeterministicWithTheStatedMix) {
  const CorpusMix mix;
  CorpusStats st;
  const std::string c = make_base_corpus(5, 300'000, mix, &st);
  EXPECT_EQ(c, make_base_corpus(5, 300'000, mix));
  EXPECT_NE(c, make_base_corpus(6, 300'000, mix));
  EXPECT_GE(c.size(), 300'000u);
  EXPECT_LT(c.size(), 302'000u);

  // The mix read back from the text alone.
  int64_t bytes[kCorpusKinds] = {}, count[kCorpusKinds] = {};
  for (const std::string& p : paragraphs(c)) {
    const int k = int(classify_paragraph(p));
    bytes[k] += int64_t(p.size());
    ++count[k];
    if (k == int(CorpusKind::Countdown)) {  // "reach T with a b c": a training-split problem
      std::smatch m;
      ASSERT_TRUE(std::regex_search(p, m, std::regex(R"(^reach ([0-9]+) with ([0-9 ]+)\n)"))) << p;
      CountdownProblem q;
      q.target = std::stoi(m[1]);
      q.numbers = ints(m[2]);
      EXPECT_EQ(countdown_split(q), CountdownSplit::Train) << p;
    }
    if (k == int(CorpusKind::Chat)) {
      EXPECT_NE(p.find("<｜Assistant｜><think>\n"), std::string::npos) << p;
      EXPECT_EQ(p.find("Using the numbers"), std::string::npos) << p;
    }
    if (k == int(CorpusKind::Prompt)) {  // the exact task prompt of a training-split problem
      const std::optional<CountdownProblem> stated = stated_problem(p);
      ASSERT_TRUE(stated) << p;
      const CountdownProblem& q = *stated;
      EXPECT_EQ(countdown_split(q), CountdownSplit::Train) << p;
      const std::optional<CountdownTrace> t = countdown_trace(q, mix.prompt_lines);
      ASSERT_TRUE(t) << p;
      // Rendered as `seek sft` renders the trace record: the tokens SFT and GRPO train on.
      const std::string expected =
          std::string(train::kBos) + "<｜User｜>" + countdown_prompt(q.numbers, q.target) +
          "<｜Assistant｜>" + trace_completion(*t) + "<｜end▁of▁sentence｜>\n";
      EXPECT_EQ(p, expected);
    }
  }
  const double shares[kCorpusKinds] = {mix.arithmetic, mix.countdown, mix.chat, mix.prompt,
                                       mix.text};
  for (int k = 0; k < kCorpusKinds; ++k) {
    EXPECT_EQ(count[k], st.paragraphs[k]) << k;
    EXPECT_EQ(bytes[k], st.bytes[k]) << k;
    EXPECT_NEAR(double(bytes[k]) / double(c.size()), shares[k], 0.01) << "kind " << k;
  }
}

TEST(TinyR1Tokenizer, NumbersAreWrittenDigitByDigit) {
  const std::string corpus = make_base_corpus(1, 60'000, {});
  const train::BpeResult bpe = digit_tokenizer(corpus, {countdown_prompt(std::vector<int>{1, 2}, 3)}, 400);
  EXPECT_EQ(bpe.vocab_size, 400);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_json_text(
      bpe.tokenizer.dump(), bpe.tokenizer_config.dump(), "digit tokenizer");
  EXPECT_EQ(tok.encode("385", false).size(), 3u);
  EXPECT_EQ(tok.encode("36+19=55", false).size(), 8u);
  for (const auto& [piece, id] : bpe.tokenizer["model"]["vocab"].items()) {
    int digits = 0;
    for (char ch : piece) digits += ch >= '0' && ch <= '9';
    EXPECT_LE(digits, 1) << "token " << piece << " joins digits";
  }
  // The token file: `seek train`'s documents, each BOS ... EOS, decoding back to the corpus.
  const std::vector<int32_t> ids = encode_corpus(corpus, tok, 2048);
  std::string expected;
  for (const std::string& d : train::split_documents({corpus}, 2048))
    expected += std::string(train::kBos) + d + train::kEos;
  EXPECT_EQ(ids.front(), tok.bos_id());
  EXPECT_EQ(ids.back(), tok.eos_id());
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/false), expected);
}

TEST(TinyR1Prompts, TrainingSplitTaskRecords) {
  const std::vector<nlohmann::json> r = make_prompt_records(9, 50);
  ASSERT_EQ(r.size(), 50u);
  for (const nlohmann::json& j : r) {
    const EvalTask t = task_from_json(j, "record");
    const CountdownProblem p = CountdownProblem::from_json(j);
    EXPECT_EQ(t.prompt, countdown_prompt(p.numbers, p.target));
    EXPECT_EQ(countdown_split(p), CountdownSplit::Train);
    EXPECT_FALSE(j.contains("solution"));
  }
}
