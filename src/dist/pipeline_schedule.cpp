#include "dist/pipeline_schedule.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace seek::dist {

namespace {

// Appends a rank's ops, numbering each direction's forwards and backwards in order (every rank
// takes a direction's micro-batches first in, first out).
struct RankBuilder {
  std::vector<PipeOp>& ops;
  int next_f[2] = {0, 0}, next_b[2] = {0, 0};
  void F(int dir) { ops.push_back({PipeKind::Forward, dir, next_f[dir]++}); }
  void B(int dir, bool split = false) {
    PipeOp op{PipeKind::Backward, dir, next_b[dir]++};
    op.split = split;
    ops.push_back(op);
  }
  void W() { ops.push_back({PipeKind::Weight}); }
  void FB(int dir_f, int dir_b) {
    PipeOp op{PipeKind::ForwardBackward, dir_f, next_f[dir_f]++};
    op.dir_b = dir_b;
    op.micro_b = next_b[dir_b]++;
    ops.push_back(op);
  }
};

}  // namespace

PipeSchedule schedule_1f1b(int stages, int micro_batches) {
  if (stages < 1 || micro_batches < 1)
    fail("1f1b: needs at least one stage and one micro-batch (got {} and {})", stages, micro_batches);
  PipeSchedule s{"1f1b", stages, micro_batches, 1, std::vector<std::vector<PipeOp>>(size_t(stages))};
  for (int r = 0; r < stages; ++r) {
    RankBuilder b{s.ranks[size_t(r)]};
    const int warmup = std::min(stages - r - 1, micro_batches);
    for (int i = 0; i < warmup; ++i) b.F(0);
    for (int i = 0; i < micro_batches - warmup; ++i) {
      b.F(0);
      b.B(0);
    }
    for (int i = 0; i < warmup; ++i) b.B(0);
  }
  return s;
}

PipeSchedule schedule_dualpipe(int stages, int micro_batches) {
  const int P = stages, M = micro_batches;
  if (P < 2 || P % 2 != 0) fail("dualpipe: the number of pipeline stages must be even and >= 2, got {}", P);
  if (M % 2 != 0 || M < 2 * P)
    fail("dualpipe: the micro-batches per step must be even and at least twice the stages ({}), got {}", 2 * P, M);
  PipeSchedule s{"dualpipe", P, M, 2, std::vector<std::vector<PipeOp>>(size_t(P))};
  const int half = P / 2;
  for (int r = 0; r < P; ++r) {
    RankBuilder b{s.ranks[size_t(r)]};
    // Phase 0 is the direction that starts on this rank's side of the pipeline.
    const int second = r >= half ? 1 : 0;
    const auto d = [&](int phase) { return phase ^ second; };
    const int h = std::min(r, P - 1 - r);
    const bool middle = r == half - 1 || r == half;
    for (int i = 0; i < (half - h - 1) * 2; ++i) b.F(d(0));
    for (int i = 0; i < h + 1; ++i) {
      b.F(d(0));
      b.F(d(1));
    }
    for (int i = 0; i < half - h - 1; ++i) {
      b.B(d(1), /*split=*/true);
      b.W();
      b.F(d(1));
    }
    for (int i = 0; i < M / 2 - P + h + 1; ++i) {
      if (i == 0 && middle) {  // not overlapped: a smaller bubble on the middle ranks
        b.F(d(0));
        b.B(d(1));
      } else {
        b.FB(d(0), d(1));
      }
      b.FB(d(1), d(0));
    }
    for (int i = 0; i < half - h - 1; ++i) {
      b.B(d(1));
      b.FB(d(1), d(0));
    }
    // The second half of these backwards defer their weight gradients.
    const int n6 = h + 1;
    bool split = false;
    for (int i = 0; i < n6; ++i) {
      if (i == n6 / 2 && h % 2 == 1) split = true;
      b.B(d(1), split);
      if (i == n6 / 2 && h % 2 == 0) split = true;
      b.B(d(0), split);
    }
    for (int i = 0; i < half - h - 1; ++i) {
      b.W();
      b.B(d(0), /*split=*/true);
    }
    for (int i = 0; i < h + 1; ++i) b.W();
  }
  return s;
}

PipeSchedule make_schedule(const std::string& name, int stages, int micro_batches) {
  if (name == "1f1b") return schedule_1f1b(stages, micro_batches);
  if (name == "dualpipe") return schedule_dualpipe(stages, micro_batches);
  fail("unknown pipeline schedule \"{}\" (1f1b or dualpipe)", name);
}

std::string describe(const PipeSchedule& s) {
  std::string out;
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    out += fmt::format("rank {:>2}:", r);
    for (const PipeOp& op : s.ranks[r]) {
      switch (op.kind) {
        case PipeKind::Forward: out += fmt::format(" F{}.{}", op.dir, op.micro); break;
        case PipeKind::Backward: out += fmt::format(" B{}.{}{}", op.dir, op.micro, op.split ? "s" : ""); break;
        case PipeKind::Weight: out += " W"; break;
        case PipeKind::ForwardBackward:
          out += fmt::format(" FB({}.{},{}.{})", op.dir, op.micro, op.dir_b, op.micro_b);
          break;
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace seek::dist
