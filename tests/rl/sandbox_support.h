// Whether this machine can build the sandbox at all. The code reward needs new user/pid/net/mount
// namespaces; a machine that forbids them (a container without user namespaces, a seccomp or
// AppArmor policy) makes every run fail closed, which sandbox_test checks with its own
// fail-closed cases. Tests of what a running sandbox contains skip there, saying why, instead
// of failing on the facility rather than on the code.
#pragma once
#include <unistd.h>

#include <string>

#include "rl/sandbox.h"

namespace seek::rl {

// Empty when a sandboxed /bin/true runs; else why it cannot (python3 missing, clone refused).
inline const std::string& sandbox_unavailable() {
  static const std::string why = [] {
    if (access("/usr/bin/python3", X_OK) != 0)
      return std::string("/usr/bin/python3 missing (scripts/setup installs it)");
    SandboxSpec spec;
    spec.argv = {"/bin/true"};
    const SandboxResult r = run_sandboxed(spec);
    // Only the facility itself (clone into new namespaces) counts as unavailable; any later
    // setup failure is the sandbox's own bug and must fail the tests.
    if (r.status == SandboxStatus::kSetupFailed &&
        (r.setup_error.rfind("clone", 0) == 0 || r.setup_error.rfind("writing the namespace", 0) == 0))
      return "this machine cannot create the sandbox's namespaces: " + r.setup_error;
    return std::string();
  }();
  return why;
}

}  // namespace seek::rl
