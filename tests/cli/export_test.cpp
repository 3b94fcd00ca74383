// `seek export --gguf` end to end, and the commands that take a model path (run, info, logits,
// tokenize) on the .gguf file give what they give on the directory.
#include "cli/harness.h"

namespace seek::cli_test {
namespace {

const std::string kPrompt = "1 2 3 4 5";

class ExportGguf : public ::testing::TestWithParam<const char*> {};

TEST_P(ExportGguf, RunGivesTheSameGreedyTokensAsTheDirectory) {
  TempDir dir, out;
  link_model(GetParam(), dir, true);
  const std::string gguf = out / "model.gguf";
  Result e = run_seek({"export", "--gguf", dir.str(), gguf});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(contains(e.err, "bf16")) << e.err;
  for (bool precise : {true, false}) {
    std::vector<std::string> args = {"--raw", "-p", kPrompt, "-n", "12", "--temperature", "0"};
    if (precise) args.push_back("--precise");
    auto with = [&](const std::string& model) {
      std::vector<std::string> a = {"run", model};
      a.insert(a.end(), args.begin(), args.end());
      return a;
    };
    Result a = run_seek(with(dir.str())), b = run_seek(with(gguf));
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_FALSE(a.out.empty());
    EXPECT_EQ(b.out, a.out) << "precise " << precise;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExportGguf, ::testing::Values("v3-tiny", "v3-tiny-fp8", "v2-lite-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(ExportGgufCommand, InfoTokenizeAndLogitsWorkOnTheFile) {
  TempDir dir, out;
  link_model("v3-tiny", dir, true);
  const std::string gguf = out / "m.gguf";
  ASSERT_EQ(run_seek({"export", "--gguf", dir.str(), gguf, "--type", "f32"}).code, 0);

  Result i = run_seek({"info", gguf});
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_TRUE(contains(i.out, "deepseek_v3")) << i.out;
  EXPECT_TRUE(contains(i.out, "noaux_tc")) << i.out;

  Result t1 = run_seek({"tokenize", dir.str()}, "Hello world <｜User｜>");
  Result t2 = run_seek({"tokenize", gguf}, "Hello world <｜User｜>");
  ASSERT_EQ(t2.code, 0) << t2.err;
  EXPECT_EQ(t2.out, t1.out);
  Result c1 = run_seek({"template", dir.str()}, R"([{"role": "user", "content": "hi"}])");
  Result c2 = run_seek({"template", gguf}, R"([{"role": "user", "content": "hi"}])");
  ASSERT_EQ(c2.code, 0) << c2.err;
  EXPECT_EQ(c2.out, c1.out);

  Result l1 = run_seek({"logits", dir.str(), "--ids", "1,5,9,200", "-o", out / "a.f32"});
  Result l2 = run_seek({"logits", gguf, "--ids", "1,5,9,200", "-o", out / "b.f32"});
  ASSERT_EQ(l2.code, 0) << l2.err;
  const std::string a = slurp(out / "a.f32"), b = slurp(out / "b.f32");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), 4u * 1000 * 4);

  // A .gguf file exports again (its tokenizer metadata carried over) to the same logits.
  const std::string again = out / "again.gguf";
  Result x = run_seek({"export", "--gguf", gguf, again, "--type", "f32"});
  ASSERT_EQ(x.code, 0) << x.err;
  Result l3 = run_seek({"logits", again, "--ids", "1,5,9,200", "-o", out / "c.f32"});
  ASSERT_EQ(l3.code, 0) << l3.err;
  EXPECT_EQ(slurp(out / "c.f32"), b);
  EXPECT_EQ(run_seek({"tokenize", again}, "Hello world <｜User｜>").out, t1.out);
}

// seek quantize: a GGUF file of GGML block types that run, info and chat load like any model.
TEST(QuantizeCommand, WritesABlockTypedGgufThatRuns) {
  TempDir dir, out;
  link_model("v3-tiny", dir, true);
  const std::string gguf = out / "q8.gguf";
  Result q = run_seek({"quantize", dir.str(), gguf, "--type", "q8_0"});
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_TRUE(contains(q.err, "q8_0")) << q.err;
  Result r = run_seek({"run", gguf, "--raw", "-p", kPrompt, "-n", "8", "--temperature", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  Result i = run_seek({"info", gguf});
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_TRUE(contains(i.out, "Q8_0")) << i.out;

  Result bad = run_seek({"quantize", dir.str(), out / "x.gguf", "--type", "q5_1"});
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.err, "q5_1")) << bad.err;
  Result none = run_seek({"quantize", dir.str(), out / "y.gguf"});
  EXPECT_NE(none.code, 0);
  EXPECT_TRUE(contains(none.err, "--type")) << none.err;
}

TEST(ExportGgufCommand, Errors) {
  TempDir dir, out;
  Result r = run_seek({"export", "--gguf", dir.str(), out / "x.gguf"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "config.json")) << r.err;
  link_model("v3-tiny", dir, false);
  r = run_seek({"export", "--gguf", dir.str(), out / "x.gguf", "--type", "q4"});
  EXPECT_EQ(r.code, 1);
  // Without a tokenizer the file still holds the model (logits works; run needs a tokenizer).
  r = run_seek({"export", "--gguf", dir.str(), out / "x.gguf"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "no tokenizer")) << r.err;
  r = run_seek({"run", out / "x.gguf", "-p", "hi"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "tokenizer.ggml")) << r.err;
}

}  // namespace
}  // namespace seek::cli_test
