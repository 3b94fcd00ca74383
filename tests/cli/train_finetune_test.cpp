// `seek train` fine-tuning a fixture checkpoint (with the real tokenizer beside it) on a raw token
// file: the saved checkpoint is in the init's dtype, carries its tokenizer, and `seek run` runs it.
#include <nlohmann/json.hpp>

#include "cli/harness.h"

namespace seek::cli_test {
namespace {

TEST(TrainCommand, FineTunesABf16CheckpointThatSeekRunLoads) {
  TempDir init, work;
  link_model("v2-lite-tiny", init, /*with_tokenizer=*/true);
  std::string ids;
  for (uint32_t i = 0; i < 100; ++i) {
    const uint32_t id = (i * 13 + 5) % 1000;
    ids.append(reinterpret_cast<const char*>(&id), 4);
  }
  spit(work / "ids.bin", ids);
  spit(work / "train.json", R"({
    "init": ")" + init.str() + R"(",
    "data": {"tokens": "ids.bin", "order": "sequential"},
    "train": {"seq_len": 8, "batch_size": 2, "steps": 2, "lr": 1e-3, "schedule": "constant",
              "warmup": 0, "log_every": 1}, "out": "run" })");
  Result t = run_seek({"train", "-c", work / "train.json", "-q"});
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string ckpt = work / "run/final";
  const nlohmann::json cfg = nlohmann::json::parse(slurp(ckpt + "/config.json"));
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
  const std::string st = slurp(ckpt + "/model.safetensors");
  EXPECT_NE(st.find(R"("model.layers.0.self_attn.q_proj.weight":{"dtype":"BF16")"), std::string::npos);
  EXPECT_EQ(slurp(ckpt + "/tokenizer.json"), slurp(kTokenizer + "/tokenizer.json"));
  std::istringstream metrics(slurp(work / "run/metrics.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(metrics, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] != "train") continue;
    ++n;
    for (const char* k : {"loss", "ce", "ce_mtp", "grad_norm"}) EXPECT_TRUE(j.contains(k)) << line;
  }
  EXPECT_EQ(n, 2);
  Result r = run_seek({"run", ckpt, "--raw", "-p", "1 2 3", "-n", "4", "--temperature", "0"});
  EXPECT_EQ(r.code, 0) << r.err;
}

// Text files with an init checkpoint are encoded with the init's tokenizer (no BPE training).
TEST(TrainCommand, FineTunesOnTextWithTheInitsTokenizer) {
  TempDir init, work;
  link_model("v2-lite-tiny", init, /*with_tokenizer=*/true);
  std::string text;
  for (int i = 0; i < 200; ++i) text += std::to_string(i % 10) + (i % 20 == 19 ? "\n\n" : " ");
  spit(work / "digits.txt", text);
  spit(work / "train.json", R"({
    "init": ")" + init.str() + R"(",
    "data": {"files": ["digits.txt"], "doc_bytes": 100, "val_every": 4},
    "train": {"seq_len": 8, "batch_size": 2, "steps": 2, "lr": 1e-3, "warmup": 0, "eval_every": 2},
    "out": "run" })");
  Result t = run_seek({"train", "-c", work / "train.json", "-q"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_FALSE(fs::exists(work / "run/tokenizer"));  // no BPE trained
  EXPECT_EQ(slurp(work / "run/final/tokenizer.json"), slurp(kTokenizer + "/tokenizer.json"));
  EXPECT_NE(slurp(work / "run/metrics.jsonl").find("\"val_loss\""), std::string::npos);
}

TEST(TrainCommand, InitGeometryConflictNamesTheField) {
  TempDir work;
  spit(work / "train.json", R"({"init": ")" + kModels + R"(v2-lite-tiny",
    "model": {"num_hidden_layers": 7}, "data": {"tokens": "ids.bin"}, "out": "run"})");
  Result t = run_seek({"train", "-c", work / "train.json", "-q"});
  EXPECT_EQ(t.code, 1);
  EXPECT_NE(t.err.find("field \"num_hidden_layers\" is 7 but the init checkpoint has"), std::string::npos) << t.err;
}

}  // namespace
}  // namespace seek::cli_test
