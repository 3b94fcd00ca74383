// A sandbox for running untrusted programs (the model's code, scored by CodeReward).
//
// What a run gets, as root and as a normal user alike (Linux >= 5.14, user namespaces allowed):
//   - fresh user, PID, network, mount, IPC and UTS namespaces (clone(2) flags): no network at
//     all (a loopback that is down), no view of the host's processes; the program is PID 1 of
//     its namespace, so when it exits or is killed every process it started dies with it;
//   - a private root filesystem (pivot_root): a small read-only tmpfs holding read-only bind
//     mounts of /usr, /bin, /lib* (the interpreter and its libraries), /dev/{null,zero,urandom}
//     and a writable /work (its own size-limited tmpfs: the working directory and HOME). No
//     /etc, /home, /tmp, /proc or server files exist inside, so nothing outside /work can be
//     written and nothing but the system's programs and libraries can be read; /work vanishes
//     with the namespace (the host only sees an empty mount-point directory, removed after);
//   - ids: as root the program runs as an unprivileged uid/gid (65534 "nobody" by default, no
//     supplementary groups); as a normal user it keeps that user's uid (the namespace maps only
//     it) and loses every capability at exec (PR_SET_NO_NEW_PRIVS, no set-uid/file caps);
//   - rlimits: CPU seconds, address space, file size, open files, no core dumps, and a process
//     count. RLIMIT_NPROC counts per (user namespace, uid) since Linux 5.14, so the count is per
//     run, and it holds as root because the program's uid is not 0;
//   - its own session and process group (setsid), a clean environment, only fds 0/1/2, a
//     parent-death signal, and a wall-clock timeout that SIGKILLs the namespace's init (which
//     kills the rest) and the process group.
// It fails closed: if any step of the setup fails (no user namespaces, a mount refused...), the
// program is not run and the result says which step failed and why.
//
// The caller is unharmed: the child is made with clone(2) (no CLONE_VM: a copy, like fork) and
// does only async-signal-safe system calls between clone and execve, with every string prepared
// beforehand, so a multi-threaded trainer is safe (no malloc, no locks in the child). All fds the
// run opens are O_CLOEXEC and closed, the child is always reaped (waitpid on its pid only, so a
// trainer must not set SIGCHLD to SIG_IGN), and stdin goes through a socket written with
// MSG_NOSIGNAL, so a program that exits early never raises SIGPIPE in the trainer.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace seek::rl {

struct SandboxLimits {
  double wall_seconds = 5.0;                 // then SIGKILL to the whole namespace
  int cpu_seconds = 2;                       // RLIMIT_CPU (SIGKILL when reached)
  std::size_t memory_bytes = 256ull << 20;   // RLIMIT_AS
  std::size_t file_bytes = 16ull << 20;      // RLIMIT_FSIZE (largest single file)
  std::size_t disk_bytes = 32ull << 20;      // size of the /work tmpfs (all files together)
  int processes = 16;                        // RLIMIT_NPROC, counted inside the run
  int open_files = 64;                       // RLIMIT_NOFILE
  std::size_t output_bytes = 1ull << 20;     // stdout and stderr kept (each); the rest drained
};

struct SandboxSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path inside the sandbox (/usr/bin/..)
  std::string stdin_data;
  std::vector<std::pair<std::string, std::string>> files;  // written to /work/<name> first
  SandboxLimits limits;
  std::string temp_root = "/tmp";  // where the run's (empty) mount-point directory is made
  unsigned sandbox_uid = 65534;    // the program's ids when the caller is root
  unsigned sandbox_gid = 65534;
};

enum class SandboxStatus {
  kExited,       // exited by itself: see exit_code
  kSignaled,     // killed by a signal it did not ask the trainer for: see signal, cpu_limit
  kTimeout,      // the wall-clock timeout fired and the run was killed
  kSetupFailed,  // isolation could not be set up: the program never ran (see setup_error)
};

struct SandboxResult {
  SandboxStatus status = SandboxStatus::kSetupFailed;
  int exit_code = -1;
  int signal = 0;
  bool cpu_limit = false;  // killed at RLIMIT_CPU
  double cpu_seconds = 0;  // user + system time of the program and its reaped children
  std::string out, err;
  bool out_truncated = false, err_truncated = false;
  std::string setup_error;
  // One line for rewards and logs: "exit status 0", "timeout after 5 s", "cpu limit (2 s)",
  // "killed by signal 11", "sandbox setup failed: ...".
  std::string summary(const SandboxLimits& limits) const;
};

// Runs spec.argv in a fresh sandbox; blocks until the run is over (at most about
// limits.wall_seconds + 1 s). Throws seek::Error only for a malformed spec (empty argv, a file
// name with '/'); everything the program does is reported in the result.
SandboxResult run_sandboxed(const SandboxSpec& spec);

}  // namespace seek::rl
