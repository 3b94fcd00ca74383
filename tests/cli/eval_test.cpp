// `seek eval` and `seek sample` end to end on a random model (which scores ~0, so these tests
// pin the output's shape, the counts and the files, not the accuracy; tests/rl/eval_test.cpp
// scripts the answers and checks the scores exactly).
#include <nlohmann/json.hpp>
#include <regex>

#include "cli/harness.h"

namespace seek::cli_test {
namespace {

// The fixture v3-tiny's vocabulary (1,000) cannot hold the chat template's tokens: a random
// model at the real vocabulary size with the real tokenizer, made once.
class EvalCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    Result r = run_seek({"make-model", *dir_ / "m", "--preset", "tiny-v3", "--vocab", "129280",
                         "--mtp", "0", "--seed", "3", "--tokenizer", kTokenizer});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model() { return *dir_ / "m"; }
  static std::string path(const std::string& name) { return *dir_ / name; }
  static TempDir* dir_;
};
TempDir* EvalCommand::dir_ = nullptr;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  const std::string data = slurp(path);
  for (size_t at = 0, nl; (nl = data.find('\n', at)) != std::string::npos; at = nl + 1)
    out.push_back(nlohmann::json::parse(data.substr(at, nl - at)));  // throws if invalid
  return out;
}

TEST_F(EvalCommand, CountdownPrintsAccuracyWithItsInterval) {
  Result r = run_seek({"eval", "--model", model(), "--task", "countdown", "--n", "3", "--seed",
                       "9", "-n", "6", "--precise", "--out", path("eval.jsonl")});
  ASSERT_EQ(r.code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.out, m,
      std::regex(R"(accuracy: ([0-9.]+)% \((\d+)/3\), 95% CI \[([0-9.]+)%, ([0-9.]+)%\] \(Wilson score interval\))")))
      << r.out;
  EXPECT_LE(std::stod(m[3]), std::stod(m[1]));
  EXPECT_GE(std::stod(m[4]), std::stod(m[1]));
  EXPECT_GT(std::stod(m[4]), 50.0);  // 3 problems cannot pin an accuracy down
  EXPECT_TRUE(contains(r.out, "task countdown (seed 9, held-out split): 3 problems, reward "
                              "countdown, greedy"))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(format: [0-9.]+% \(\d+/3 well-formed\))")));
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(mean completion: [0-9.]+ tokens)")));
  EXPECT_TRUE(contains(r.err, "eval 3/3 (")) << r.err;  // the progress line

  const std::vector<nlohmann::json> recs = read_jsonl(path("eval.jsonl"));
  ASSERT_EQ(recs.size(), 3u);
  for (const nlohmann::json& j : recs) {
    for (const char* k : {"prompt", "completion", "reason"}) EXPECT_TRUE(j[k].is_string()) << k;
    EXPECT_TRUE(j["reward"].is_number());
    EXPECT_TRUE(j["correct"].is_boolean());
    EXPECT_TRUE(contains(j["prompt"], "create an equation that equals"));
    EXPECT_LE(j["tokens"].get<int>(), 6);
  }
  // Greedy and --precise (a sequence's tokens do not depend on what shares its batches): the
  // same problems give the same completions.
  Result again = run_seek({"eval", "--model", model(), "--task", "countdown", "--n", "3",
                           "--seed", "9", "-n", "6", "--precise", "--batch", "1", "--out",
                           path("again.jsonl")});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(slurp(path("again.jsonl")), slurp(path("eval.jsonl")));
}

TEST_F(EvalCommand, TaskFilesNeedAReward) {
  spit(path("tasks.jsonl"), "{\"prompt\": \"What is 6*7?\", \"answer\": 42}\n"
                            "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}], "
                            "\"answer\": 4}\n");
  Result no = run_seek({"eval", "--model", model(), "--task", path("tasks.jsonl"), "-n", "2"});
  EXPECT_EQ(no.code, 1);
  EXPECT_TRUE(contains(no.err, "seek: error:") && contains(no.err, "--reward")) << no.err;
  Result r = run_seek({"eval", "--model", model(), "--task", path("tasks.jsonl"), "-n", "2",
                       "--reward", "{\"name\": \"arithmetic\", \"format\": 0.5}"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "2 problems, reward arithmetic")) << r.out;
  EXPECT_TRUE(contains(r.out, "(0/2)")) << r.out;
  Result bad = run_seek({"eval", "--model", model(), "--task", path("tasks.jsonl"), "--reward",
                         "nope"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "nope")) << bad.err;
}

TEST_F(EvalCommand, SampleWritesOnlyVerifiedRecords) {
  Result r = run_seek({"sample", "--model", model(), "--task", "countdown", "--problems", "2",
                       "-n", "2", "--max-tokens", "4", "--seed", "1", "--out", path("sft.jsonl")});
  ASSERT_EQ(r.code, 0) << r.err;
  // A random model writes no correct, well-formed trace in 4 tokens: an empty, valid file.
  EXPECT_TRUE(contains(r.err, "kept 0/4 completions")) << r.err;
  EXPECT_TRUE(fs::exists(path("sft.jsonl")));
  EXPECT_TRUE(read_jsonl(path("sft.jsonl")).empty());
}

}  // namespace
}  // namespace seek::cli_test
