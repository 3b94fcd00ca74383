// Every failure ends as "seek: error: ..." and exit code 1, never a crash or an abort.
#include "cli/harness.h"

namespace seek::cli_test {
namespace {

void expect_error(const Result& r, const std::string& part) {
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("seek: error: ", 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, part)) << "expected \"" << part << "\" in: " << r.err;
}

TEST(Errors, MissingModelDirectory) {
  for (const char* cmd : {"info", "run", "chat", "logits"}) {
    std::vector<std::string> args = {cmd, "/nonexistent/model"};
    if (std::string(cmd) == "run") args.insert(args.end(), {"-p", "hi"});
    if (std::string(cmd) == "logits") args.insert(args.end(), {"--ids", "1", "--out", "/tmp/x"});
    expect_error(run_seek(args), "/nonexistent/model");
  }
}

TEST(Errors, BadConfig) {
  TempDir dir;
  spit(dir / "config.json", R"({"model_type": "llama", "vocab_size": 10})");
  expect_error(run_seek({"info", dir.str()}), "unsupported model_type \"llama\"");
  spit(dir / "config.json", "{not json");
  expect_error(run_seek({"info", dir.str()}), "config.json");
  TempDir empty;
  expect_error(run_seek({"info", empty.str()}), "config.json");
}

TEST(Errors, BadFlags) {
  expect_error(run_seek({"info"}), "MODEL_DIR");
  expect_error(run_seek({"run", kModels + "v3-tiny", "-p", "x", "--temperature", "abc"}),
               "temperature");
  expect_error(run_seek({"frobnicate"}), "frobnicate");
  expect_error(run_seek({}), "subcommand");
  expect_error(run_seek({"make-model", "/tmp/x", "--preset", "nope"}), "nope");
  expect_error(run_seek({"make-model", "/tmp/x", "--preset", "tiny-v3", "--format", "int4"}),
               "format");
}

TEST(Errors, RunNeedsATokenizer) {
  // v3-tiny has no tokenizer.json: say so before loading weights.
  expect_error(run_seek({"run", kModels + "v3-tiny", "-p", "hi"}), "tokenizer.json");
}

TEST(Errors, NoChatTemplatePointsToRaw) {
  TempDir dir;
  link_model("v3-tiny", dir, false);
  fs::create_symlink(fs::path(kTokenizer) / "tokenizer.json", dir.path / "tokenizer.json");
  spit(dir / "tokenizer_config.json", R"({"bos_token": "<｜begin▁of▁sentence｜>"})");
  expect_error(run_seek({"run", dir.str(), "hi"}), "--raw");
  expect_error(run_seek({"chat", dir.str()}, "hi\n"), "chat_template");
  Result raw = run_seek({"run", dir.str(), "1 2", "--raw", "-n", "2"});
  EXPECT_EQ(raw.code, 0) << raw.err;
}

TEST(Errors, BadSamplingValues) {
  TempDir dir;
  link_model("v3-tiny", dir, true);
  expect_error(run_seek({"run", dir.str()}), "no prompt");
  expect_error(run_seek({"run", dir.str(), "a", "-p", "b"}), "excludes");
  expect_error(run_seek({"run", dir.str(), "-p", "x", "--top-p", "0"}), "top_p");
  expect_error(run_seek({"run", dir.str(), "-p", "x", "--temperature", "-1"}), "temperature");
}

TEST(Errors, HelpAndVersionSucceed) {
  Result h = run_seek({"--help"});
  EXPECT_EQ(h.code, 0);
  for (const char* cmd : {"run", "chat", "info", "tokenize", "template", "logits", "make-model"})
    EXPECT_TRUE(contains(h.out, cmd)) << cmd;
  Result rh = run_seek({"run", "--help"});
  EXPECT_EQ(rh.code, 0);
  EXPECT_TRUE(contains(rh.out, "--temperature") && contains(rh.out, "--hide-thinking"));
  Result v = run_seek({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_TRUE(contains(v.out, "seek"));
}

}  // namespace
}  // namespace seek::cli_test
