// The sandbox: clone(2) into new namespaces, build a private root, drop ids, set limits, exec.
// Between clone and execve the child runs on a copy of a multi-threaded process, so it calls
// only async-signal-safe system calls on data prepared by the parent (ChildPlan); a failed
// step is written to the error pipe as {step, errno} and the child exits without running the
// program (fail closed).
#include "rl/sandbox.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace seek::rl {
namespace {

enum Step : int {
  kSync, kSetsid, kDeathSignal, kMountPrivate, kMountRoot, kMkdir, kBind, kSymlink, kMountWork,
  kWriteFile, kPivotRoot, kRemountReadOnly, kSetgroups, kSetgid, kSetuid, kNoNewPrivs, kRlimit,
  kDup, kCloseFds, kChdir, kExec,
};
const char* step_name(int s) {
  static const char* names[] = {
      "wait for the id maps", "setsid", "parent-death signal", "make mounts private",
      "mount the root tmpfs", "mkdir in the new root", "bind mount", "symlink in the new root",
      "mount the /work tmpfs", "write a file to /work", "pivot_root", "remount / read-only",
      "setgroups", "setgid", "setuid", "no_new_privs", "setrlimit", "dup2", "close fds",
      "chdir /work", "execve"};
  return s >= 0 && s <= kExec ? names[s] : "unknown step";
}

// What the new root holds besides /work: the host's program and library trees through
// read-only bind mounts, and the few devices programs expect.
struct Entry {
  enum Kind { kDir, kBindDir, kBindFile, kSymlink } kind;
  std::string source;  // host path, or the link text for kSymlink
  std::string target;  // path under the new root (as seen from the host mount point)
  unsigned long locked = 0;  // the source mount's flags a user namespace may not clear
};

struct ChildPlan {
  bool as_root = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string root, root_opts, work, work_opts;
  std::vector<Entry> entries;
  std::vector<std::string> file_paths;
  std::vector<const std::string*> file_data;
  std::vector<const char*> argv, envp;
  std::vector<std::string> env;
  std::vector<std::pair<int, rlimit>> limits;
  int sync_r = -1, report_w = -1, in = -1, out = -1, err = -1;
  int max_fd = 1024;
};

[[noreturn]] void child_fail(const ChildPlan& p, int step) {
  int msg[2] = {step, errno};
  ssize_t ignored = write(p.report_w, msg, sizeof msg);
  (void)ignored;
  _exit(127);
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int child_main(void* arg) {
  ChildPlan& p = *static_cast<ChildPlan*>(arg);  // the child's own copy of the parent's plan
  char byte;
  // The parent writes our uid/gid maps, then one byte; EOF means it gave up.
  if (read(p.sync_r, &byte, 1) != 1) child_fail(p, kSync);
  if (setsid() < 0) child_fail(p, kSetsid);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(p, kDeathSignal);
  // The trainer's signal mask and ignored signals would survive execve: start the program clean.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Ids first: files on the new tmpfs can only be created by an id the namespace maps (root's 0
  // is not mapped). No uid here is the namespace's root 0, so the change keeps the namespace's
  // capabilities for the mounts below; execve drops them all (a non-root uid, no_new_privs).
  // As root the supplementary groups (gid 0) must go; as a normal user setgroups is denied and
  // the groups stay the user's.
  // Raw system calls: glibc's wrappers broadcast the change to every thread of the process, and
  // the child's copy of glibc still lists the trainer's other threads: it would wait forever.
  if (p.as_root && syscall(SYS_setgroups, 0, nullptr) < 0) child_fail(p, kSetgroups);
  if (syscall(SYS_setresgid, p.gid, p.gid, p.gid) < 0) child_fail(p, kSetgid);
  if (syscall(SYS_setresuid, p.uid, p.uid, p.uid) < 0) child_fail(p, kSetuid);
  umask(022);

  // A private root: tmpfs on the run's mount point, the host trees bound in, /work its own tmpfs.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) child_fail(p, kMountPrivate);
  if (mount("tmpfs", p.root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.root_opts.c_str()) < 0)
    child_fail(p, kMountRoot);
  for (const Entry& e : p.entries) {
    if (e.kind == Entry::kSymlink) {
      if (symlink(e.source.c_str(), e.target.c_str()) < 0) child_fail(p, kSymlink);
      continue;
    }
    if (e.kind == Entry::kDir || e.kind == Entry::kBindDir) {
      if (mkdir(e.target.c_str(), 0755) < 0 && errno != EEXIST) child_fail(p, kMkdir);
    } else {
      int fd = open(e.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) child_fail(p, kMkdir);
      close(fd);
    }
    if (e.kind == Entry::kDir) continue;
    if (mount(e.source.c_str(), e.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      child_fail(p, kBind);
    // Read-only, so even a program whose uid owns files there (a normal user's) cannot write.
    if (e.kind == Entry::kBindDir &&
        mount(nullptr, e.target.c_str(), nullptr,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | e.locked, nullptr) < 0)
      child_fail(p, kRemountReadOnly);
  }
  if (mkdir(p.work.c_str(), 0755) < 0) child_fail(p, kMkdir);
  if (mount("tmpfs", p.work.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.work_opts.c_str()) < 0)
    child_fail(p, kMountWork);
  for (size_t i = 0; i < p.file_paths.size(); ++i) {
    int fd = open(p.file_paths[i].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
    if (fd < 0) child_fail(p, kWriteFile);
    if (!write_all(fd, p.file_data[i]->data(), p.file_data[i]->size())) child_fail(p, kWriteFile);
    close(fd);
  }
  // pivot_root(".", "."): the old root is stacked under the new one, then detached.
  if (chdir(p.root.c_str()) < 0) child_fail(p, kPivotRoot);
  if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(p, kPivotRoot);
  if (umount2(".", MNT_DETACH) < 0) child_fail(p, kPivotRoot);
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) < 0)
    child_fail(p, kRemountReadOnly);
  if (chdir("/work") < 0) child_fail(p, kChdir);

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(p, kNoNewPrivs);
  for (const auto& [resource, lim] : p.limits)
    if (setrlimit(static_cast<__rlimit_resource>(resource), &lim) < 0) child_fail(p, kRlimit);

  // fds: the parent moved ours to >= 10, so dup2 onto 0..3 clobbers none of them. The report
  // pipe stays open as fd 3 until execve closes it (O_CLOEXEC): EOF there means exec worked.
  if (dup2(p.in, 0) < 0 || dup2(p.out, 1) < 0 || dup2(p.err, 2) < 0) child_fail(p, kDup);
  if (dup3(p.report_w, 3, O_CLOEXEC) < 0) child_fail(p, kDup);
  p.report_w = 3;
  if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
    for (int fd = 4; fd < p.max_fd; ++fd) close(fd);  // kernels before 5.9
  execve(p.argv[0], const_cast<char* const*>(p.argv.data()),
         const_cast<char* const*>(p.envp.data()));
  child_fail(p, kExec);
}

// An fd owned by the parent; closes itself.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
};

// Moves fd to a number >= 10 (so the child's dup2 onto 0..3 cannot hit it), still O_CLOEXEC.
int high_fd(int fd) {
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return h;
}

bool write_proc(pid_t pid, const char* name, const std::string& text) {
  std::string path = fmt::format("/proc/{}/{}", pid, name);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

std::vector<Entry> root_entries(const std::string& root) {
  std::vector<Entry> entries;
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (lstat(dir, &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char link[256];
      ssize_t n = readlink(dir, link, sizeof link - 1);
      if (n <= 0) continue;
      entries.push_back({Entry::kSymlink, std::string(link, static_cast<size_t>(n)), root + dir});
    } else if (S_ISDIR(st.st_mode)) {
      // A bind remount inside a user namespace must keep the flags the host set on the mount.
      struct statvfs vfs {};
      unsigned long locked = 0;
      if (statvfs(dir, &vfs) == 0) {
        if (vfs.f_flag & ST_NOEXEC) locked |= MS_NOEXEC;
        if (vfs.f_flag & ST_NOATIME) locked |= MS_NOATIME;
        if (vfs.f_flag & ST_NODIRATIME) locked |= MS_NODIRATIME;
        if (vfs.f_flag & ST_RELATIME) locked |= MS_RELATIME;
      }
      entries.push_back({Entry::kBindDir, dir, root + dir, locked});
    }
  }
  entries.push_back({Entry::kDir, "", root + "/dev"});
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/urandom"})
    entries.push_back({Entry::kBindFile, dev, root + dev});
  return entries;
}

// Feeds stdin, collects stdout/stderr (bounded, the rest drained so the program never blocks on
// a full pipe), enforces the wall clock, and reaps the child.
SandboxResult finish_run(pid_t pid, const SandboxSpec& spec, Fd& in, Fd& out, Fd& err,
                         SandboxResult& r) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto deadline = Clock::now() + duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(spec.limits.wall_seconds));
  // A pidfd makes the child's exit pollable; without one (Linux < 5.3) poll ticks every 10 ms.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  fcntl(out.fd, F_SETFL, O_NONBLOCK);
  fcntl(err.fd, F_SETFL, O_NONBLOCK);
  if (spec.stdin_data.empty()) in.reset();
  std::size_t in_off = 0;
  bool exited = false, killed = false;
  int status = 0;
  rusage ru{};
  Clock::time_point grace{};
  struct Stream {
    Fd* fd;
    std::string* buf;
    bool* truncated;
  } streams[2] = {{&out, &r.out, &r.out_truncated}, {&err, &r.err, &r.err_truncated}};
  char chunk[1 << 16];
  for (;;) {
    if (!exited && wait4(pid, &status, WNOHANG, &ru) == pid) {
      exited = true;
      // The namespace died with its init, so the pipes reach EOF at once; the grace only bounds
      // a write end that a concurrent fork elsewhere in the trainer holds until its exec.
      grace = Clock::now() + std::chrono::seconds(1);
      in.reset();
    }
    if (exited && out.fd < 0 && err.fd < 0) break;
    const auto now = Clock::now();
    if (exited && now >= grace) break;
    if (!exited && !killed && now >= deadline) {
      kill(pid, SIGKILL);   // the PID namespace's init: every process in it dies
      kill(-pid, SIGKILL);  // and its process group, for good measure
      killed = true;
    }
    long wait_ms = 10;
    if (exited) wait_ms = duration_cast<milliseconds>(grace - now).count() + 1;
    else if (pidfd.fd >= 0) wait_ms = killed ? 1000 : duration_cast<milliseconds>(deadline - now).count() + 1;
    pollfd fds[4];
    int nfds = 0;
    for (auto& s : streams)
      if (s.fd->fd >= 0) fds[nfds++] = {s.fd->fd, POLLIN, 0};
    if (in.fd >= 0) fds[nfds++] = {in.fd, POLLOUT, 0};
    if (!exited && pidfd.fd >= 0) fds[nfds++] = {pidfd.fd, POLLIN, 0};
    poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(std::max(0L, wait_ms)));
    for (auto& s : streams) {
      if (s.fd->fd < 0) continue;
      ssize_t n = read(s.fd->fd, chunk, sizeof chunk);
      if (n > 0) {
        std::size_t room = spec.limits.output_bytes - std::min(spec.limits.output_bytes, s.buf->size());
        s.buf->append(chunk, std::min(room, static_cast<std::size_t>(n)));
        if (static_cast<std::size_t>(n) > room) *s.truncated = true;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        s.fd->reset();
      }
    }
    if (in.fd >= 0) {
      std::size_t len = std::min<std::size_t>(spec.stdin_data.size() - in_off, 1 << 16);
      ssize_t n = send(in.fd, spec.stdin_data.data() + in_off, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) in_off += static_cast<std::size_t>(n);
      if (in_off == spec.stdin_data.size() || (n < 0 && errno != EAGAIN && errno != EINTR))
        in.reset();  // EOF for the program (or it closed stdin: fine)
    }
  }
  if (!exited)
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
  r.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  if (killed) {
    r.status = SandboxStatus::kTimeout;
  } else if (WIFEXITED(status)) {
    r.status = SandboxStatus::kExited;
    r.exit_code = WEXITSTATUS(status);
  } else {
    r.status = SandboxStatus::kSignaled;
    r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    // RLIMIT_CPU's hard limit is a SIGKILL from the kernel; we sent none (no timeout). The
    // kernel enforces the limit on its scheduler clock, while wait4's rusage can read ~10% less
    // on a loaded host (0.89 s seen at a 1 s limit), so the CPU time only has to be near it.
    r.cpu_limit = (r.signal == SIGKILL || r.signal == SIGXCPU) &&
                  r.cpu_seconds >= 0.5 * std::max(1, spec.limits.cpu_seconds);
  }
  return r;
}

}  // namespace

std::string SandboxResult::summary(const SandboxLimits& limits) const {
  switch (status) {
    case SandboxStatus::kSetupFailed: return "sandbox setup failed: " + setup_error;
    case SandboxStatus::kTimeout: return fmt::format("timeout after {} s", limits.wall_seconds);
    case SandboxStatus::kSignaled:
      if (cpu_limit) return fmt::format("cpu limit ({} s)", limits.cpu_seconds);
      return fmt::format("killed by signal {} (SIG{})", signal,
                         sigabbrev_np(signal) ? sigabbrev_np(signal) : "?");
    case SandboxStatus::kExited: return fmt::format("exit status {}", exit_code);
  }
  return "?";
}

SandboxResult run_sandboxed(const SandboxSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/')
    fail("sandbox: argv[0] must be an absolute path inside the sandbox");
  for (const auto& [name, data] : spec.files)
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
      fail("sandbox: file name '{}' must be a plain name (written to /work)", name);
  const SandboxLimits& lim = spec.limits;
  SandboxResult r;

  std::string tmpl = spec.temp_root + "/seek-sandbox-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    r.setup_error = fmt::format("mkdtemp under {}: {}", spec.temp_root, std::strerror(errno));
    return r;
  }
  // The run's mount point: empty on the host (the tmpfs lives only in the child's namespace),
  // removed with anything in it when the run is over.
  struct TempDir {
    std::string path;
    ~TempDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } temp{tmpl};

  ChildPlan plan;
  plan.as_root = geteuid() == 0;
  plan.uid = plan.as_root ? spec.sandbox_uid : geteuid();
  plan.gid = plan.as_root ? spec.sandbox_gid : getegid();
  plan.root = temp.path;
  plan.root_opts = "size=1m,mode=0755";
  plan.work = temp.path + "/work";
  plan.work_opts = fmt::format("size={},mode=0777", std::max<std::size_t>(lim.disk_bytes, 4096));
  plan.entries = root_entries(temp.path);
  for (const auto& [name, data] : spec.files) {
    plan.file_paths.push_back(plan.work + "/" + name);
    plan.file_data.push_back(&data);
  }
  for (const auto& a : spec.argv) plan.argv.push_back(a.c_str());
  plan.argv.push_back(nullptr);
  plan.env = {"PATH=/usr/bin:/bin", "HOME=/work", "TMPDIR=/work", "LANG=C.UTF-8",
              "PYTHONDONTWRITEBYTECODE=1"};
  for (const auto& e : plan.env) plan.envp.push_back(e.c_str());
  plan.envp.push_back(nullptr);
  auto rl = [](std::size_t v) { return rlimit{static_cast<rlim_t>(v), static_cast<rlim_t>(v)}; };
  plan.limits = {{RLIMIT_CPU, rl(static_cast<std::size_t>(std::max(1, lim.cpu_seconds)))},
                 {RLIMIT_AS, rl(lim.memory_bytes)},
                 {RLIMIT_FSIZE, rl(lim.file_bytes)},
                 {RLIMIT_NOFILE, rl(static_cast<std::size_t>(std::max(8, lim.open_files)))},
                 {RLIMIT_CORE, rl(0)},
                 {RLIMIT_NPROC, rl(static_cast<std::size_t>(std::max(1, lim.processes)))}};
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    plan.max_fd = static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20));

  // Every fd O_CLOEXEC (a concurrent fork+exec elsewhere in the trainer must not keep them).
  int sync_p[2], report_p[2], out_p[2], err_p[2], in_s[2];
  if (pipe2(sync_p, O_CLOEXEC) < 0) return r.setup_error = "pipe", r;
  Fd sync_r(high_fd(sync_p[0])), sync_w(sync_p[1]);
  if (pipe2(report_p, O_CLOEXEC) < 0) return r.setup_error = "pipe", r;
  Fd report_r(report_p[0]), report_w(high_fd(report_p[1]));
  if (pipe2(out_p, O_CLOEXEC) < 0) return r.setup_error = "pipe", r;
  Fd out_r(out_p[0]), out_w(high_fd(out_p[1]));
  if (pipe2(err_p, O_CLOEXEC) < 0) return r.setup_error = "pipe", r;
  Fd err_r(err_p[0]), err_w(high_fd(err_p[1]));
  // stdin is a socket so the parent can write with MSG_NOSIGNAL (no SIGPIPE in the trainer).
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_s) < 0)
    return r.setup_error = "socketpair", r;
  Fd in_w(in_s[0]), in_r(high_fd(in_s[1]));
  if (sync_r.fd < 0 || report_w.fd < 0 || out_w.fd < 0 || err_w.fd < 0 || in_r.fd < 0)
    return r.setup_error = fmt::format("fcntl(F_DUPFD): {}", std::strerror(errno)), r;
  plan.sync_r = sync_r.fd;
  plan.report_w = report_w.fd;
  plan.in = in_r.fd;
  plan.out = out_w.fd;
  plan.err = err_w.fd;

  constexpr std::size_t kStack = 256 << 10;
  void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return r.setup_error = "mmap of the child stack", r;
  const int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC |
                    CLONE_NEWUTS | SIGCHLD;
  pid_t pid = clone(child_main, static_cast<char*>(stack) + kStack, flags, &plan);
  int clone_errno = errno;
  munmap(stack, kStack);  // the child runs on its own copy
  if (pid < 0) {
    r.setup_error = fmt::format(
        "clone with new user/pid/net/mount namespaces: {} (are user namespaces disabled, e.g. "
        "kernel.unprivileged_userns_clone=0 or an AppArmor/seccomp policy?)",
        std::strerror(clone_errno));
    return r;
  }
  sync_r.reset();
  report_w.reset();
  in_r.reset();
  out_w.reset();
  err_w.reset();
  auto reap = [&] {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  };

  // The id maps: as root, the sandbox uid/gid map to themselves (the trainer's root is not
  // mapped at all); as a normal user only the user's own ids can be mapped, and setgroups must
  // be denied first.
  bool mapped =
      plan.as_root
          ? write_proc(pid, "uid_map", fmt::format("{0} {0} 1\n", plan.uid)) &&
                write_proc(pid, "gid_map", fmt::format("{0} {0} 1\n", plan.gid))
          : write_proc(pid, "uid_map", fmt::format("{0} {0} 1\n", plan.uid)) &&
                write_proc(pid, "setgroups", "deny") &&
                write_proc(pid, "gid_map", fmt::format("{0} {0} 1\n", plan.gid));
  if (!mapped) {
    r.setup_error = fmt::format("writing the namespace's id maps: {}", std::strerror(errno));
    kill(pid, SIGKILL);
    reap();
    return r;
  }
  if (write(sync_w.fd, "x", 1) != 1) {
    r.setup_error = "signalling the child";
    kill(pid, SIGKILL);
    reap();
    return r;
  }
  sync_w.reset();
  // Setup is a few system calls; bound the wait anyway (a hung mount must not hang the trainer).
  pollfd report{report_r.fd, POLLIN, 0};
  if (poll(&report, 1, static_cast<int>(lim.wall_seconds * 1000) + 1000) == 0) {
    r.setup_error = "the child's setup did not finish";
    kill(pid, SIGKILL);
    reap();
    return r;
  }
  int msg[2];
  ssize_t n;
  while ((n = read(report_r.fd, msg, sizeof msg)) < 0 && errno == EINTR) {
  }
  if (n != 0) {
    r.setup_error = n == static_cast<ssize_t>(sizeof msg)
                        ? fmt::format("{}: {}", step_name(msg[0]), std::strerror(msg[1]))
                        : "the child died during setup";
    kill(pid, SIGKILL);
    reap();
    return r;
  }
  report_r.reset();
  return finish_run(pid, spec, in_w, out_r, err_r, r);
}

}  // namespace seek::rl
