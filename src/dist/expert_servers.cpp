#include "dist/expert_servers.h"

#include <fmt/format.h>

namespace seek::dist {

namespace {
constexpr int64_t kStop = -1;  // else the forward's precision
}

MpiExpertServers::~MpiExpertServers() {
  if (comm_.rank() != 0) return;
  int64_t stop = kStop;
  try {
    comm_.broadcast(&stop, sizeof stop, 0);
    const int64_t rows = total_rows();
    if (on_finish)
      on_finish(fmt::format(
          "routed experts across {} ranks: {} forwards of {} tokens; {:.1f} kB of rows to and from "
          "the expert ranks per token",
          comm_.size(), forwards, tokens,
          double(rows * hidden_ * int64_t(sizeof(float))) / 1e3 / double(std::max<int64_t>(tokens, 1))));
  } catch (...) {  // MPI already gone: the others end with the job
  }
}

int64_t MpiExpertServers::total_rows() const {
  std::vector<int64_t> rows = {group_.rows_sent};
  comm_.allreduce_sum(rows);
  return rows[0];
}

void MpiExpertServers::start(kernels::Precision precision, int64_t n) const {
  int64_t p = int64_t(precision);
  comm_.broadcast(&p, sizeof p, 0);
  ++forwards;
  tokens += n;
}

std::optional<kernels::Precision> MpiExpertServers::next() const {
  int64_t p = kStop;
  comm_.broadcast(&p, sizeof p, 0);
  if (p == kStop) return std::nullopt;
  return kernels::Precision(p);
}

}  // namespace seek::dist
