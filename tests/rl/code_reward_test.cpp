// CodeReward: the program a completion submits, run against stdin/stdout tests in the sandbox.
// Hostile programs print exactly what an escape would print, so each scores 0 only because the
// sandbox contained it.
#include "rl/code_reward.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "rl/sandbox_support.h"

namespace seek::rl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string fenced(const std::string& code) {
  return "<think>first try:\n```python\nprint('draft')\n```\n</think>\n<answer>\n```python\n" +
         code + "```\n</answer>";
}

TEST(ExtractProgram, TakesTheLastPythonBlockAfterThinking) {
  EXPECT_EQ(extract_program(fenced("print(1)\n")), "print(1)\n");
  EXPECT_EQ(extract_program("```py\na=1\n```\ntext\n```Python \nb=2\n```\n```text\nno\n```"),
            "b=2\n");
  EXPECT_EQ(extract_program("<think>```python\nx\n```</think> no code"), std::nullopt);
  EXPECT_EQ(extract_program("```python\nprint(1)\n"), std::nullopt);  // unterminated
  EXPECT_EQ(extract_program("```cpp\nint main(){}\n```"), std::nullopt);
}

TEST(NormalizeOutput, TrimsTrailingWhitespacePerLine) {
  EXPECT_EQ(normalize_output("1 2 \r\n3\t\n\n\n"), "1 2\n3");
  EXPECT_EQ(normalize_output(""), "");
  EXPECT_NE(normalize_output(" 1"), normalize_output("1"));  // leading spaces count
}

class CodeRewardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sandbox_unavailable().empty()) GTEST_SKIP() << sandbox_unavailable();
    root_ = fs::temp_directory_path() / ("seek_code_reward_test_" + std::to_string(getpid()));
    fs::create_directories(root_);
    options_.temp_root = root_.string();
    options_.limits.wall_seconds = 3;
    options_.limits.cpu_seconds = 1;
    options_.limits.processes = 8;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  RewardResult score(const std::string& code, const json& task, bool all_pass = true) {
    CodeRewardOptions o = options_;
    o.all_pass = all_pass;
    std::string completion = fenced(code);
    return CodeReward(o).score({"", completion, task});
  }
  static json sum_task() {
    return {{"tests", {{{"input", "1 2\n"}, {"output", "3\n"}},
                       {{"input", "10 -4\n"}, {"output", "6"}}}}};
  }
  fs::path root_;
  CodeRewardOptions options_;
};

TEST_F(CodeRewardTest, CorrectProgramPasses) {
  RewardResult r = score("a, b = map(int, input().split())\nprint(a + b, ' ')\n", sum_task());
  EXPECT_EQ(r.reward, 1.0) << r.reason;
  EXPECT_TRUE(r.correct);
  EXPECT_EQ(r.reason, "passed 2/2 tests");
}

TEST_F(CodeRewardTest, WrongAnswerFailsAndSaysWhere) {
  const std::string code = "a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)\n";
  RewardResult r = score(code, sum_task());
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason, "test 2: wrong output (expected \"6\", got \"0\")");
  r = score(code, sum_task(), /*all_pass=*/false);
  EXPECT_EQ(r.reward, 0.5);
  EXPECT_EQ(r.reason, "passed 1/2 tests; test 2: wrong output (expected \"6\", got \"0\")");
}

TEST_F(CodeRewardTest, NoProgramScoresZero) {
  CodeReward reward(options_);
  json task = sum_task();
  RewardResult r = reward.score({"", "<answer>3</answer>", task});
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "no ```python block");
}

TEST_F(CodeRewardTest, BrokenTaskRecordNamesTheField) {
  CodeReward reward(options_);
  for (const auto& [task, field] :
       std::vector<std::pair<json, std::string>>{{json::object(), "'tests'"},
                                                 {{{"tests", {{{"input", "1"}}}}}, "tests[0].output"},
                                                 {{{"tests", {{{"input", "1"}, {"output", "1"}}}},
                                                   {"timeout_s", "2"}}, "'timeout_s'"}}) {
    try {
      reward.score({"", fenced("print(1)\n"), task});
      ADD_FAILURE() << "no error for " << task.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

TEST_F(CodeRewardTest, HostileProgramsScoreZeroWithTheReason) {
  const json one = {{"tests", {{{"input", ""}, {"output", "ok"}}}}};
  RewardResult r = score("while True:\n    pass\nprint('ok')\n", one);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "test 1: cpu limit (1 s)");
  r = score("import time\ntime.sleep(30)\nprint('ok')\n", {{"tests", one["tests"]}, {"timeout_s", 1}});
  EXPECT_EQ(r.reason, "test 1: timeout after 1 s");
  r = score("b = bytearray(4 << 30)\nprint('ok')\n", {{"tests", one["tests"]}, {"memory_mb", 128}});
  EXPECT_EQ(r.reason, "test 1: exit status 1 (MemoryError)");
  r = score("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            one);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_TRUE(r.reason == "test 1: cpu limit (1 s)" || r.reason == "test 1: timeout after 3 s")
      << r.reason;
  EXPECT_EQ(score("print('o' * 10_000_000)\n", one).reason, "test 1: output longer than 1048576 bytes");
}

TEST_F(CodeRewardTest, EscapesScoreZero) {
  // Writing outside its directory: the expected output is what a successful escape prints.
  const std::string escape = "/tmp/seek_escape_" + std::to_string(getpid());
  RewardResult r = score("open('" + escape + "', 'w').write('x')\nprint('ok')\n",
                         {{"tests", {{{"input", ""}, {"output", "ok"}}}}});
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_NE(r.reason.find("exit status 1 (FileNotFoundError"), std::string::npos) << r.reason;
  EXPECT_FALSE(fs::exists(escape));

  // Reading the server's files: a 0600 secret of the trainer's uid.
  const std::string secret = (root_ / "secret.key").string();
  std::ofstream(secret) << "TOPSECRET";
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  r = score("print(open('" + secret + "').read())\n",
            {{"tests", {{{"input", ""}, {"output", "TOPSECRET"}}}}});
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason.find("TOPSECRET\""), std::string::npos) << r.reason;

  // A socket to a port the test listens on: the listener never sees a connection.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  r = score("import socket\ns = socket.create_connection(('127.0.0.1', " +
                std::to_string(ntohs(addr.sin_port)) + "), timeout=2)\nprint('ok')\n",
            {{"tests", {{{"input", ""}, {"output", "ok"}}}}});
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_NE(r.reason.find("exit status 1 (OSError"), std::string::npos) << r.reason;
  EXPECT_LT(accept(listener, nullptr, nullptr), 0);
  close(listener);
}

}  // namespace
}  // namespace seek::rl
