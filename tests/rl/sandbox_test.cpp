// The sandbox holds hostile programs: each is contained (the host is checked afterwards, not
// just the program's output) and the calling process is left as it was.
#include "rl/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "rl/sandbox_support.h"

namespace seek::rl {
namespace {

namespace fs = std::filesystem;

int count_dir(const char* path, const std::string& prefix = "") {
  int n = 0;
  for (auto& e : fs::directory_iterator(path))
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sandbox_unavailable().empty()) GTEST_SKIP() << sandbox_unavailable();
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
    EXPECT_EQ(count_dir(root_.c_str(), "seek-sandbox-"), 0);
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

TEST_F(SandboxTest, ProgramStartsWithDefaultSignals) {
  // A trainer's ignored and blocked signals survive execve unless the sandbox resets them.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &ign, &old);
  sigset_t usr2, old_mask;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);
  SandboxResult r = run("import signal\n"
                        "print(signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL)\n"
                        "print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n");
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR1, &old, nullptr);
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.out, "True\n[]\n");
}

TEST_F(SandboxTest, FailsClosedWhenSetupFails) {
#if defined(__SANITIZE_ADDRESS__)
  // A failing child ends inside instrumented code on the clone stack, which ASan cannot follow
  // (it reports a false positive and exits before the report): checked in the Release build.
  GTEST_SKIP() << "the child's failure path runs on a stack ASan does not know";
#endif
  SandboxSpec spec;
  spec.argv = {"/usr/bin/no-such-interpreter"};
  spec.temp_root = root_.string();
  SandboxResult r = run_sandboxed(spec);
  EXPECT_EQ(r.status, SandboxStatus::kSetupFailed) << r.summary({}) << " err: " << r.err;
  EXPECT_NE(r.setup_error.find("execve"), std::string::npos) << r.setup_error;
  spec.argv = {"/usr/bin/python3", "-c", "print(1)"};
  spec.temp_root = (root_ / "missing").string();
  r = run_sandboxed(spec);
  EXPECT_EQ(r.status, SandboxStatus::kSetupFailed);
  EXPECT_NE(r.setup_error.find("mkdtemp"), std::string::npos) << r.setup_error;
  EXPECT_TRUE(r.out.empty());
}

// Checked before the real fork bomb: a bounded loop of 200 forks (children that wait) stops at
// the process-count limit, as root too.
TEST_F(SandboxTest, ProcessCountLimitStopsABoundedForkLoop) {
  SandboxLimits lim;
  lim.processes = 8;
  SandboxResult r = run("import os, time\nn = 0\nerr = 0\nfor _ in range(200):\n"
                        "    try:\n        pid = os.fork()\n"
                        "    except OSError as e:\n        err = e.errno\n        break\n"
                        "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
                        "    n += 1\nprint(n, err)\n", "", lim);
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary(lim) << r.err;
  int forks = -1, err = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "%d %d", &forks, &err), 2) << r.out;
  EXPECT_LT(forks, lim.processes) << "the process-count limit did not hold";
  EXPECT_EQ(err, EAGAIN);
}

TEST_F(SandboxTest, ForkBombIsContained) {
  SandboxLimits lim;
  lim.processes = 8;
  lim.cpu_seconds = 1;
  lim.wall_seconds = 3;
  SandboxResult r = run("import os\nwhile True:\n    try:\n        os.fork()\n"
                        "    except OSError:\n        pass\n", "", lim);
  EXPECT_TRUE(r.status == SandboxStatus::kTimeout ||
              (r.status == SandboxStatus::kSignaled && r.cpu_limit))
      << r.summary(lim);
}

TEST_F(SandboxTest, InfiniteLoopHitsTheCpuLimit) {
  SandboxLimits lim;
  lim.cpu_seconds = 1;
  lim.wall_seconds = 10;
  SandboxResult r = run("while True:\n    pass\n", "", lim);
  ASSERT_EQ(r.status, SandboxStatus::kSignaled) << r.summary(lim);
  EXPECT_TRUE(r.cpu_limit) << r.summary(lim) << " cpu " << r.cpu_seconds;
  EXPECT_EQ(r.summary(lim), "cpu limit (1 s)");
}

TEST_F(SandboxTest, SleeperHitsTheWallTimeout) {
  SandboxLimits lim;
  lim.wall_seconds = 1;
  SandboxResult r = run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n", "", lim);
  EXPECT_EQ(r.status, SandboxStatus::kTimeout) << r.summary(lim);
  EXPECT_EQ(r.out, "sleeping\n");
}

TEST_F(SandboxTest, MemoryHogGetsMemoryError) {
  SandboxLimits lim;
  lim.memory_bytes = 256ull << 20;
  for (const char* code : {"b = bytearray(4 << 30)\n",
                           "x = []\nwhile True:\n    x.append(bytearray(32 << 20))\n"}) {
    SandboxResult r = run(code, "", lim);
    ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary(lim) << r.err;
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;
  }
}

TEST_F(SandboxTest, CannotWriteOutsideItsDirectory) {
  const std::string escape = "/tmp/seek_escape_" + std::to_string(getpid());
  const std::string beside = (root_ / "escape.txt").string();
  const std::string cwd = (fs::current_path() / ("seek_escape_" + std::to_string(getpid()))).string();
  const std::string usr = "/usr/seek_escape_" + std::to_string(getpid());
  SandboxResult r = run("import os, sys\n"
                        "print('ro', *[os.statvfs(d).f_flag & os.ST_RDONLY for d in "
                        "('/', '/usr', '/work')])\n"
                        "for p in sys.stdin.read().split():\n"
                        "    try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n"
                        "    except OSError as e:\n        print('refused', p, e.errno)\n",
                        escape + "\n" + beside + "\n" + cwd + "\n" + usr +
                            "\n/work/ok.txt\n/escape.txt\n");
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_NE(r.out.find("wrote /work/ok.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused /escape.txt"), std::string::npos) << r.out;
  // Only /work is writable: the root and the bound host trees are read-only mounts.
  EXPECT_EQ(r.out.rfind("ro 1 1 0\n", 0), 0u) << r.out;
  for (const auto& p : {escape, beside, cwd, usr}) {
    EXPECT_FALSE(fs::exists(p)) << p << " was written: " << r.out;
    EXPECT_NE(r.out.find("refused " + p), std::string::npos) << r.out;
  }
}

TEST_F(SandboxTest, CannotOpenASocketToTheHost) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  SandboxResult r = run("import socket, sys\nport = int(sys.stdin.read())\n"
                        "s = socket.socket()\ns.settimeout(2)\n"
                        "try:\n    s.connect(('127.0.0.1', port))\n    s.sendall(b'leak')\n"
                        "    print('connected')\nexcept OSError as e:\n    print('blocked', e.errno)\n",
                        std::to_string(ntohs(addr.sin_port)));
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.out.rfind("blocked", 0), 0u) << r.out;
  // The decisive check is on the host side: the listener never saw a connection.
  int c = accept(listener, nullptr, nullptr);
  EXPECT_LT(c, 0);
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  if (c >= 0) close(c);
  close(listener);
}

TEST_F(SandboxTest, CannotReadTheServersFiles) {
  // A secret only the trainer's uid may read (root's when the tests run as root).
  const std::string secret = (root_ / "secret.key").string();
  {
    std::ofstream(secret) << "TOPSECRET";
  }
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  const std::string model_dir = fs::current_path().string();
  SandboxResult r = run("import os, sys\nfor p in sys.stdin.read().split():\n"
                        "    try:\n        print('read', p, open(p).read()[:40])\n"
                        "    except OSError as e:\n        print('refused', p, e.errno)\n"
                        "for d in sys.argv[1:] + ['/', '/..']:\n    print('ls', d, os.listdir(d))\n",
                        secret + "\n/etc/passwd\n/etc/shadow\n/proc/1/environ\n" + model_dir +
                            "/CMakeCache.txt\n");
  ASSERT_EQ(r.status, SandboxStatus::kExited) << r.summary({}) << r.err;
  EXPECT_EQ(r.out.find("TOPSECRET"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("read "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused " + secret), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused /etc/passwd"), std::string::npos) << r.out;
}

std::string run_one(const SandboxSpec& base, const std::string& code, const std::string& in) {
  SandboxSpec spec = base;
  spec.files = {{"main.py", code}};
  spec.stdin_data = in;
  SandboxResult r = run_sandboxed(spec);
  return r.status == SandboxStatus::kExited ? r.out : r.summary(spec.limits);
}

int count_children_in_proc() {
  int n = 0;
  const std::string me = std::to_string(getpid());
  for (auto& e : fs::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "stat");
    std::string pid, comm, state, ppid;
    if (f >> pid >> comm >> state >> ppid && ppid == me) ++n;
  }
  return n;
}

TEST_F(SandboxTest, CallerIsUnharmedAfterConcurrentHostileRuns) {
  const int fds_before = count_dir("/proc/self/fd");
  const int threads_before = count_dir("/proc/self/task");
  SandboxSpec base;
  base.argv = {"/usr/bin/python3", "-I", "-B", "/work/main.py"};
  base.temp_root = root_.string();
  base.limits.processes = 8;
  base.limits.cpu_seconds = 1;
  base.limits.wall_seconds = 3;
  const char* hostile[] = {
      "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
      "while True:\n    pass\n",
      "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n",
      "import os\nos.close(1)\nos.setsid() if False else None\nwhile True:\n    pass\n",
  };
  // Four threads at once: clone from a multi-threaded caller, each run correct on its own.
  std::vector<std::string> outs(8);
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      outs[2 * t] = run_one(base, hostile[t], "");
      outs[2 * t + 1] = run_one(base, "print(int(input()) * 2)\n", std::to_string(t));
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(outs[2 * t + 1], std::to_string(2 * t) + "\n");
  EXPECT_EQ(count_dir("/proc/self/fd"), fds_before);
  // A joined thread can linger in /proc/self/task for an instant (glibc's join returns when the
  // kernel clears its tid, just before the task is released): wait for that, bounded.
  int threads_after = count_dir("/proc/self/task");
  for (int i = 0; i < 100000 && threads_after != threads_before; ++i) {
    std::this_thread::yield();
    threads_after = count_dir("/proc/self/task");
  }
  EXPECT_EQ(threads_after, threads_before);
  EXPECT_EQ(count_children_in_proc(), 0);
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(count_dir(root_.c_str()), 0);
}

}  // namespace
}  // namespace seek::rl
