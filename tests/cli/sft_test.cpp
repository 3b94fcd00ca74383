// `seek sft` as a user runs it: a model `seek train` made (its own BPE tokenizer and chat
// template) fine-tuned on chat records; bad records fail with file and line or, with
// "skip_bad", are skipped and counted; the result is a checkpoint `seek run` chats with.
#include <nlohmann/json.hpp>

#include "cli/harness.h"

namespace seek::cli_test {
namespace {

std::string chat(int a) {
  return nlohmann::json{{"messages", {{{"role", "user"}, {"content", "add " + std::to_string(a) + " and 2"}},
                                      {{"role", "assistant"}, {"content", std::to_string(a + 2)},
                                       {"reasoning_content", "plus two"}}}}}.dump() + "\n";
}

void write_config(const TempDir& work, const std::string& data_extra) {
  spit(work / "sft.json", R"({
    "init": "base/final",
    "data": {"sft": "chats.jsonl", "val": "val.jsonl")" + data_extra + R"(},
    "train": {"seq_len": 32, "batch_size": 2, "epochs": 2, "lr": 1e-3, "warmup": 0, "log_every": 1,
              "eval_every": 2},
    "out": "sft" })");
}

TEST(SftCommand, FineTunesOnChatsIntoACheckpointSeekRunLoads) {
  TempDir work;
  make_tiny_base(work);
  std::string chats;
  for (int i = 0; i < 6; ++i) chats += chat(i);
  spit(work / "chats.jsonl", chats);
  spit(work / "val.jsonl", chat(7) + chat(8));
  write_config(work, "");
  Result r = run_seek({"sft", "-c", work / "sft.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "seek sft: 6 conversations")) << r.err;
  const std::string metrics = slurp(work / "sft/metrics.jsonl");
  std::istringstream in(metrics);
  std::string line;
  int train = 0, val = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "data") {
      EXPECT_EQ(j["samples"], 6);
      EXPECT_EQ(j["val_samples"], 2);
      EXPECT_EQ(j["skipped"], 0);
    }
    train += j["type"] == "train";
    val += j["type"] == "val";
  }
  EXPECT_GT(train, 0);
  EXPECT_GT(val, 0);
  EXPECT_TRUE(fs::exists(work / "sft/report.html"));
  EXPECT_EQ(slurp(work / "sft/final/tokenizer_config.json"), slurp(work / "base/final/tokenizer_config.json"));
  Result run = run_seek({"run", work / "sft/final", "add 3 and 2", "-n", "4", "--temperature", "0"});
  EXPECT_EQ(run.code, 0) << run.err;
  // A finished run resumed does no more steps.
  Result again = run_seek({"sft", "-c", work / "sft.json", "--resume", "-q"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(slurp(work / "sft/metrics.jsonl"), metrics);
}

TEST(SftCommand, BadRecordsFailWithFileAndLineOrAreSkippedAndCounted) {
  TempDir work;
  make_tiny_base(work);
  spit(work / "chats.jsonl", chat(1) + R"({"messages": [{"role": "robot", "content": "x"}]})" "\n" + chat(2));
  spit(work / "val.jsonl", chat(3));
  write_config(work, "");
  Result r = run_seek({"sft", "-c", work / "sft.json", "-q"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "chats.jsonl:2: messages[0]: unknown role \"robot\"")) << r.err;
  write_config(work, R"(, "skip_bad": true)");
  r = run_seek({"sft", "-c", work / "sft.json", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "seek sft: skipped 1 bad records (the first: ")) << r.err;
  EXPECT_TRUE(contains(slurp(work / "sft/metrics.jsonl"), R"("skipped":1)"));
}

}  // namespace
}  // namespace seek::cli_test
