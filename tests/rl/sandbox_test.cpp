// The sandbox holds hostile programs: each is contained (the host is checked afterwards, not
// just the program's output) and the calling process is left as it was.
#include "rl/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace seek::rl {
namespace {

namespace fs = std::filesystem;

bool have_python() { return access("/usr/bin/python3", X_OK) == 0; }

int count_dir(const char* path) {
  int n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(path)) ++n;
  return n;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_python()) GTEST_SKIP() << "/usr/bin/python3 missing (scripts/setup installs it)";
    root_ = fs::temp_directory_path() / ("seek_sandbox_test_" + std::to_string(getpid()));
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  SandboxResult run(const std::string& code, const std::string& input = "",
                    SandboxLimits limits = {}) {
    SandboxSpec spec;
    spec.argv = {"/usr/bin/python3", "-I", "-B", "/work/main.py"};
    spec.files = {{"main.py", code}};
    spec.stdin_data = input;
    spec.limits = limits;
    spec.temp_root = root_.string();
    SandboxResult r = run_sandboxed(spec);
    // Every run removes its temporary directory, whatever the program did.
    EXPECT_EQ(count_dir(root_.c_str()), 0);
    return r;
  }
  fs::path root_;
};

TEST_F(SandboxTest, RunsAProgramWithStdinAndCapturesOutput) {
  SandboxResult r = run("import sys\nx = sys.stdin.read().split()\n"
                        "print(int(x[0]) + int(x[1]))\nprint('warn', file=sys.stderr)\n",
                        "2 40\n");
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "42\n");
  EXPECT_EQ(r.err, "warn\n");
}

TEST_F(SandboxTest, ReportsExitStatusAndKeepsLargeStdinFlowing) {
  // 4 MB in and out: more than any pipe buffer, so both directions must be pumped together.
  std::string big(4 << 20, 'a');
  SandboxLimits lim;
  lim.output_bytes = 8 << 20;
  SandboxResult r = run("import sys\nd = sys.stdin.read()\nsys.stdout.write(d)\nsys.exit(3)\n",
                        big, lim);
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out.size(), big.size());
}

TEST_F(SandboxTest, OutputIsCappedAndTheRestDrained) {
  SandboxLimits lim;
  lim.output_bytes = 1000;
  SandboxResult r = run("import sys\nfor _ in range(1000): sys.stdout.write('x' * 10000)\n"
                        "print('done', file=sys.stderr)\n", "", lim);
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary(lim) << r.err;
  EXPECT_EQ(r.out.size(), 1000u);
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.err, "done\n");
}

TEST_F(SandboxTest, EnvironmentIsCleanAndIdsAreNotRoot) {
  setenv("SEEK_SECRET_TOKEN", "hunter2", 1);
  SandboxResult r = run("import os\nprint(sorted(os.environ))\nprint(os.getuid(), os.getcwd())\n"
                        "print(sorted(os.listdir('/')))\nprint(sorted(os.listdir('/proc/self/fd'))"
                        " if os.path.exists('/proc') else 'noproc')\n");
  unsetenv("SEEK_SECRET_TOKEN");
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.out.find("SEEK_SECRET_TOKEN"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/work"), std::string::npos) << r.out;
  if (geteuid() == 0) {
    EXPECT_NE(r.out.find("65534 /work"), std::string::npos) << r.out;
  }
  for (const char* hidden : {"'etc'", "'home'", "'root'", "'tmp'", "'proc'"}) {
    EXPECT_EQ(r.out.find(hidden), std::string::npos) << hidden << " visible: " << r.out;
  }
}

}  // namespace
}  // namespace seek::rl
