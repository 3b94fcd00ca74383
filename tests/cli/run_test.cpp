// `seek run`, `seek chat` and `seek make-model` end to end.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cli/harness.h"
#include "generate/reference_loop.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli_test {
namespace {

int count(const std::string& s, const std::string& part) {
  int n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

// The fixture model (vocab 1000) with the real tokenizer: raw prompts whose ids are < 1000 run.
TEST(RunCommand, RawPromptOnTheFixtureMatchesTheReferenceLoop) {
  TempDir dir;
  link_model("v3-tiny", dir, true);
  const std::string prompt = "1 2 3 4 5";
  const auto tok = tokenizer::Tokenizer::load(dir.str());
  const std::vector<int32_t> ids = tok.encode(prompt, true);
  for (int32_t id : ids) ASSERT_LT(id, 1000) << "pick a prompt inside the tiny vocabulary";

  auto model = model::Model::load(dir.str());
  generate::ReferenceLoop ref(*model, &tok);
  generate::ReferenceParams p;
  p.sampling.temperature = 0.0f;
  p.max_new_tokens = 8;
  p.precise = true;
  const std::vector<int32_t> want = ref.generate(ids, p).tokens;
  const std::string want_text = tok.decode(want, /*skip_special_tokens=*/true);

  Result r = run_seek({"run", dir.str(), "--raw", "-p", prompt, "-n", "8", "--temperature", "0",
                       "--precise"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, want_text);  // piped stdout is exactly the answer, no newline added
  EXPECT_TRUE(contains(r.err, fmt::format("[prompt: {} tokens", ids.size()))) << r.err;
  EXPECT_TRUE(contains(r.err, fmt::format("generated: {} tokens", want.size()))) << r.err;

  // The prompt from stdin gives the same answer.
  Result s = run_seek({"run", dir.str(), "--raw", "-p", "-", "-n", "8", "--temp", "0", "--precise"},
                      prompt);
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(s.out, r.out);
}

TEST(RunCommand, TemplateTokensOutsideATinyVocabularyAreAClearError) {
  TempDir dir;
  link_model("v3-tiny", dir, true);
  Result r = run_seek({"run", dir.str(), "-p", "hi", "-n", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "seek: error:") && contains(r.err, "vocab_size 1000")) << r.err;
}

// A random-weight model at the real vocabulary size with the real tokenizer, made once.
class TinyV3 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    Result r = run_seek({"make-model", dir_->str(), "--preset", "tiny-v3", "--vocab", "129280",
                         "--mtp", "0", "--seed", "3", "--tokenizer", kTokenizer});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(contains(r.err, "tiny-v3")) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string dir() { return dir_->str(); }
  static TempDir* dir_;
};
TempDir* TinyV3::dir_ = nullptr;

TEST_F(TinyV3, MadeAValidModel) {
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir()) / f)) << f;
  Result r = run_seek({"info", dir(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["vocab_size"], 129280);
  EXPECT_EQ(j["mtp_modules"], 0);
}

TEST_F(TinyV3, RunStreamsAnAnswerWithStats) {
  const std::vector<std::string> args = {"run", dir(), "-p", "Hello!", "-n", "6", "--seed", "5",
                                         "--system", "Be brief."};
  Result a = run_seek(args), b = run_seek(args);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);  // same seed, same text
  EXPECT_TRUE(std::regex_search(
      a.err, std::regex(R"(\[prompt: \d+ tokens, [0-9.]+ tok/s \| generated: \d+ tokens)")))
      << a.err;
  // The chat template was applied: BOS + system + <｜User｜>Hello!<｜Assistant｜>.
  const auto tok = tokenizer::Tokenizer::load(dir());
  const size_t n_prompt =
      tok.encode("<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hello!<｜Assistant｜>", false).size();
  EXPECT_TRUE(contains(a.err, fmt::format("[prompt: {} tokens", n_prompt))) << a.err;
  // The prompt may also be a positional argument.
  Result c = run_seek({"run", dir(), "Hello!", "-n", "6", "--seed", "5", "--system", "Be brief."});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(c.out, a.out);

  // Flags all parse and combine.
  Result d = run_seek({"run", dir(), "-p", "Hi", "-n", "4", "--top-k", "40", "--top-p", "0.9",
                       "--min-p", "0.05", "--repeat-penalty", "1.1", "--frequency-penalty", "0.2",
                       "--presence-penalty", "0.1", "--stop", "\n", "--stop", "。", "--ctx", "256",
                       "--threads", "1", "--mmap", "--hide-thinking", "--precise"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_FALSE(contains(d.out, "\n"));
}

TEST_F(TinyV3, SpeculativeDecodingNeedsAnMtpModuleAndChangesNoToken) {
  Result no = run_seek({"run", dir(), "-p", "Hi", "-n", "4", "--speculative"});
  EXPECT_NE(no.code, 0);
  EXPECT_TRUE(contains(no.err, "MTP module")) << no.err;

  TempDir mtp;
  Result made = run_seek({"make-model", mtp.str(), "--preset", "tiny-v3", "--vocab", "129280",
                          "--mtp", "1", "--seed", "3", "--tokenizer", kTokenizer});
  ASSERT_EQ(made.code, 0) << made.err;
  const std::vector<std::string> args = {"run", mtp.str(), "-p", "Hello!", "-n", "24", "--temp", "0",
                                         "--precise", "--ignore-eos"};
  std::vector<std::string> spec = args;
  spec.push_back("--speculative");
  Result a = run_seek(args), b = run_seek(spec);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  std::smatch drafts;
  ASSERT_TRUE(std::regex_search(b.err, drafts, std::regex(R"(MTP drafts \d+/\d+ accepted)"))) << b.err;
  EXPECT_FALSE(contains(a.err, "MTP drafts")) << a.err;

  // The module travels in a GGUF file with --mtp (llama.cpp's nextn layer): BF16 keeps every
  // weight, so the drafts and their acceptance are the directory's; a Q8_0 file drafts too and
  // still changes no token of its own greedy output. Without --mtp there is nothing to draft with.
  const std::string bf16 = (fs::path(mtp.str()) / "m.bf16.gguf").string();
  const std::string q8 = (fs::path(mtp.str()) / "m.q8_0.gguf").string();
  const std::string plain = (fs::path(mtp.str()) / "m.plain.gguf").string();
  ASSERT_EQ(run_seek({"export", "--gguf", mtp.str(), bf16, "--mtp"}).code, 0);
  ASSERT_EQ(run_seek({"quantize", mtp.str(), q8, "--type", "q8_0", "--mtp"}).code, 0);
  ASSERT_EQ(run_seek({"export", "--gguf", mtp.str(), plain}).code, 0);
  auto on = [&](const std::string& file, bool speculative) {
    std::vector<std::string> v = args;
    v[1] = file;
    if (speculative) v.push_back("--speculative");
    return run_seek(v);
  };
  Result g = on(bf16, true);
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_EQ(g.out, a.out);
  EXPECT_TRUE(contains(g.err, drafts.str())) << g.err;
  Result q = on(q8, false), qs = on(q8, true);
  ASSERT_EQ(qs.code, 0) << qs.err;
  EXPECT_EQ(qs.out, q.out);
  EXPECT_TRUE(contains(qs.err, "MTP drafts")) << qs.err;
  Result none = on(plain, true);
  EXPECT_NE(none.code, 0);
  EXPECT_TRUE(contains(none.err, "MTP module")) << none.err;
  Result refused = run_seek({"export", "--gguf", dir(), plain, "--mtp"});
  EXPECT_NE(refused.code, 0);
  EXPECT_TRUE(contains(refused.err, "no MTP module")) << refused.err;
}

TEST_F(TinyV3, ThinkingGoesToStderrOrNowhere) {
  // A prompt that ends inside <think> (as R1 templates do): the output is reasoning until
  // </think>, which a random model never writes. Not a TTY: plain text on stderr.
  const std::vector<std::string> args = {"run", dir(), "Question<think>\n", "--raw", "-n", "8",
                                         "--seed", "4", "--ignore-eos"};
  Result shown = run_seek(args);
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(shown.out, "");
  EXPECT_GT(shown.err.find("[prompt:"), 0u) << shown.err;  // reasoning came first
  EXPECT_FALSE(contains(shown.err, "\x1b[")) << "no ANSI codes when stderr is not a TTY";
  std::vector<std::string> hide = args;
  hide.push_back("--hide-thinking");
  Result hidden = run_seek(hide);
  ASSERT_EQ(hidden.code, 0) << hidden.err;
  EXPECT_EQ(hidden.out, "");
  EXPECT_EQ(hidden.err.rfind("[prompt:", 0), 0u) << hidden.err;
}

TEST_F(TinyV3, ContextLimitEndsGenerationWithAMessage) {
  Result r = run_seek({"run", dir(), "-p", "Hello!", "--ctx", "12", "--ignore-eos"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "context limit of 12 tokens was reached")) << r.err;
  Result e = run_seek({"run", dir(), "-p", "Hello there, how are you today?", "--ctx", "8"});
  EXPECT_EQ(e.code, 1);
  EXPECT_TRUE(contains(e.err, "context limit is 8")) << e.err;
}

TEST_F(TinyV3, ChatKeepsTheConversationAndReusesTheCache) {
  Result r = run_seek({"chat", dir(), "-n", "4", "--seed", "1"},
                      "Hello\nAnd again\n/reset\nFresh \\\nstart\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(r.err, "[prompt:"), 3) << r.err;
  EXPECT_TRUE(contains(r.err, "conversation cleared")) << r.err;
  // Turn 2 re-renders turn 1 and only prefills what is new.
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(\[prompt: \d+ tokens \(\d+ cached\))"))) << r.err;
  Result q = run_seek({"chat", dir(), "-n", "2"}, "/exit\nnever answered\n");
  EXPECT_EQ(q.code, 0);
  EXPECT_EQ(count(q.err, "[prompt:"), 0) << q.err;
}

TEST_F(TinyV3, CtrlCStopsGenerationCleanly) {
  // stdout is a pipe: once the answer starts streaming, send SIGINT.
  TempDir io;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  std::vector<std::string> args = {SEEK_BINARY, "run", dir(), "-p", "Tell me a long story.",
                                   "--ignore-eos", "--ctx", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addopen(&fa, 2, (io / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  char buf[4096];
  std::string text;
  while (text.empty()) {
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, size_t(n));
  }
  kill(pid, SIGINT);
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string err = slurp(io / "err");
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  EXPECT_TRUE(contains(err, "[prompt:") && contains(err, "interrupted")) << err;
  EXPECT_FALSE(text.empty());
}

}  // namespace
}  // namespace seek::cli_test
