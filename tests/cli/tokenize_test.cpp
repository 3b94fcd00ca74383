// `seek tokenize` / `seek template` against the tokenizer goldens, through a model directory
// that holds a fixture model next to the DeepSeek-V3 tokenizer files.
#include <nlohmann/json.hpp>

#include "cli/harness.h"

namespace seek::cli_test {
namespace {

std::vector<nlohmann::json> jsonl(const std::string& name) {
  std::vector<nlohmann::json> v;
  std::istringstream in(slurp(kTokenizer + "/" + name));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

class TokenizerDir : public ::testing::Test {
 protected:
  void SetUp() override { link_model("v3-tiny", dir_, /*with_tokenizer=*/true); }
  TempDir dir_;
};

TEST_F(TokenizerDir, EncodeGoldens) {
  int checked = 0;
  for (const auto& c : jsonl("cases.jsonl")) {
    if (++checked > 5) break;  // the tokenizer tests cover every golden; this is the plumbing
    std::vector<std::string> args = {"tokenize", dir_.str()};
    if (!c["add_special_tokens"].get<bool>()) args.push_back("--no-bos");
    Result r = run_seek(args, c["text"].get<std::string>());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out), c["ids"]) << c["name"];
    EXPECT_EQ(r.out.back(), '\n');
  }
  EXPECT_GT(checked, 3);
}

TEST_F(TokenizerDir, DecodeGoldens) {
  int checked = 0;
  for (const auto& c : jsonl("decode_cases.jsonl")) {
    if (++checked > 6) break;
    std::vector<std::string> args = {"tokenize", dir_.str(), "--decode"};
    if (c["skip_special_tokens"].get<bool>()) args.push_back("--skip-special");
    Result r = run_seek(args, c["ids"].dump());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, c["text"].get<std::string>()) << c["name"];
  }
  Result bad = run_seek({"tokenize", dir_.str(), "--decode"}, "[1, \"x\"]");
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "seek: error:")) << bad.err;
}

TEST_F(TokenizerDir, ChatTemplateGoldens) {
  int checked = 0;
  for (const auto& c : jsonl("chat_cases.jsonl")) {
    std::vector<std::string> args = {"template", dir_.str()};
    if (!c["add_generation_prompt"].get<bool>()) args.push_back("--no-generation-prompt");
    Result r = run_seek(args, c["messages"].dump());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, c["rendered"].get<std::string>()) << c["name"];  // no newline added
    // The rendered prompt tokenizes (without a BOS: the template wrote it) to the golden ids.
    if (++checked > 2) continue;
    Result t = run_seek({"tokenize", dir_.str(), "--no-bos"}, r.out);
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_EQ(nlohmann::json::parse(t.out), c["ids"]) << c["name"];
  }
  // The object form: {"messages": [...]}.
  Result o = run_seek({"template", dir_.str()},
                      R"({"messages": [{"role": "user", "content": "Hi"}]})");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>");
  Result bad = run_seek({"template", dir_.str()}, "{\"role\": ");
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "seek: error:") && contains(bad.err, "stdin")) << bad.err;
}

TEST(TokenizeCommand, MissingTokenizerIsAClearError) {
  Result r = run_seek({"tokenize", kModels + "v3-tiny"}, "hello");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "seek: error:") && contains(r.err, "tokenizer.json")) << r.err;
}

}  // namespace
}  // namespace seek::cli_test
