#include "dist/pipeline_sim.h"

#include <algorithm>

#include "core/error.h"

namespace seek::dist {

namespace {

constexpr double kNotYet = -1.0;

// Finish times of one kind of op per (direction, micro-batch, stage).
struct Done {
  int P, per_dir;
  std::vector<double> t;
  Done(int dirs, int per, int P_) : P(P_), per_dir(per), t(size_t(dirs * per * P_), kNotYet) {}
  double& at(int dir, int micro, int stage) { return t[size_t((dir * per_dir + micro) * P + stage)]; }
};

}  // namespace

PipeSimResult simulate_pipeline(const PipeSchedule& s, const PipeCosts& c) {
  return simulate_pipeline(s, std::vector<PipeCosts>(size_t(std::max(s.stages, 0)), c));
}

PipeSimResult simulate_pipeline(const PipeSchedule& s, const std::vector<PipeCosts>& stage_costs) {
  const int P = s.stages, dirs = s.directions;
  if (P < 1 || int(s.ranks.size()) != P) fail("pipeline {}: {} rank op lists for {} stages", s.name, s.ranks.size(), P);
  if (int(stage_costs.size()) != P) fail("pipeline {}: {} stage costs for {} stages", s.name, stage_costs.size(), P);
  if (s.micro_batches % dirs != 0) fail("pipeline {}: {} micro-batches do not split over {} directions", s.name, s.micro_batches, dirs);
  const int per = s.micro_batches / dirs;
  const auto cost_of = [&](int r, int dir) -> const PipeCosts& { return stage_costs[size_t(s.stage_of(r, dir))]; };
  const double p2p = stage_costs[0].p2p;
  Done fwd(dirs, per, P), bwd(dirs, per, P);
  PipeSimResult res;
  res.busy.assign(size_t(P), 0.0);
  res.peak_in_flight.assign(size_t(P), 0);
  res.start.resize(size_t(P));
  res.end.resize(size_t(P));
  std::vector<size_t> pc(size_t(P), 0);
  std::vector<double> free(size_t(P), 0.0);
  std::vector<int> in_flight(size_t(P), 0);
  std::vector<std::vector<int>> queued_w{size_t(P)};  // per rank: the stages of its queued Ws, oldest first

  const auto check = [&](int r, int dir, int micro) {
    if (dir < 0 || dir >= dirs || micro < 0 || micro >= per)
      fail("pipeline {}: rank {} runs micro-batch {}.{}, outside {} direction(s) of {}", s.name, r, dir, micro, dirs, per);
  };
  // When the inputs of a forward / backward of (dir, micro) on rank r exist (kNotYet: not yet).
  const auto f_ready = [&](int r, int dir, int micro) -> double {
    const int st = s.stage_of(r, dir);
    if (st == 0) return 0.0;
    const double t = fwd.at(dir, micro, st - 1);
    return t == kNotYet ? kNotYet : t + p2p;
  };
  const auto b_ready = [&](int r, int dir, int micro) -> double {
    const int st = s.stage_of(r, dir);
    const double own = fwd.at(dir, micro, st);
    if (own == kNotYet) return kNotYet;
    if (st == P - 1) return own;  // the loss, on this rank
    const double t = bwd.at(dir, micro, st + 1);
    return t == kNotYet ? kNotYet : std::max(own, t + p2p);
  };
  const auto set_once = [&](Done& d, const char* what, int r, int dir, int micro, double t) {
    double& slot = d.at(dir, micro, s.stage_of(r, dir));
    if (slot != kNotYet)
      fail("pipeline {}: the {} of micro-batch {}.{} at stage {} runs twice (rank {})", s.name, what, dir, micro, s.stage_of(r, dir), r);
    slot = t;
  };

  size_t left = 0;
  for (const auto& ops : s.ranks) left += ops.size();
  while (left > 0) {
    bool progress = false;
    for (int r = 0; r < P; ++r) {
      const std::vector<PipeOp>& ops = s.ranks[size_t(r)];
      while (pc[size_t(r)] < ops.size()) {
        const PipeOp& op = ops[pc[size_t(r)]];
        double ready = 0.0, cost = 0.0;
        switch (op.kind) {
          case PipeKind::Forward:
            check(r, op.dir, op.micro);
            ready = f_ready(r, op.dir, op.micro), cost = cost_of(r, op.dir).F;
            break;
          case PipeKind::Backward:
            check(r, op.dir, op.micro);
            ready = b_ready(r, op.dir, op.micro);
            cost = op.split ? cost_of(r, op.dir).B : cost_of(r, op.dir).B + cost_of(r, op.dir).W;
            break;
          case PipeKind::Weight:
            if (queued_w[size_t(r)].empty())
              fail("pipeline {}: rank {} runs a W with no split backward queued (op {})", s.name, r, pc[size_t(r)]);
            cost = stage_costs[size_t(queued_w[size_t(r)].front())].W;
            break;
          case PipeKind::ForwardBackward: {
            check(r, op.dir, op.micro);
            check(r, op.dir_b, op.micro_b);
            const double a = f_ready(r, op.dir, op.micro), b = b_ready(r, op.dir_b, op.micro_b);
            ready = a == kNotYet || b == kNotYet ? kNotYet : std::max(a, b);
            const PipeCosts& cf = cost_of(r, op.dir);
            const PipeCosts& cb = cost_of(r, op.dir_b);
            cost = cf.FB > 0.0 ? cf.FB : cf.F + cb.B + cb.W;
            break;
          }
        }
        if (ready == kNotYet) break;
        const double t0 = std::max(free[size_t(r)], ready), t1 = t0 + cost;
        switch (op.kind) {
          case PipeKind::Forward:
            set_once(fwd, "forward", r, op.dir, op.micro, t1);
            ++in_flight[size_t(r)];
            break;
          case PipeKind::Backward:
            set_once(bwd, "backward", r, op.dir, op.micro, t1);
            --in_flight[size_t(r)];
            if (op.split) queued_w[size_t(r)].push_back(s.stage_of(r, op.dir));
            break;
          case PipeKind::Weight: queued_w[size_t(r)].erase(queued_w[size_t(r)].begin()); break;
          case PipeKind::ForwardBackward:
            set_once(fwd, "forward", r, op.dir, op.micro, t1);
            set_once(bwd, "backward", r, op.dir_b, op.micro_b, t1);
            break;
        }
        res.peak_in_flight[size_t(r)] = std::max(res.peak_in_flight[size_t(r)], in_flight[size_t(r)]);
        res.start[size_t(r)].push_back(t0);
        res.end[size_t(r)].push_back(t1);
        res.busy[size_t(r)] += cost;
        free[size_t(r)] = t1;
        ++pc[size_t(r)];
        --left;
        progress = true;
      }
    }
    if (!progress) {
      std::string waiting;
      for (int r = 0; r < P; ++r)
        if (pc[size_t(r)] < s.ranks[size_t(r)].size()) waiting += fmt::format(" rank {} at op {};", r, pc[size_t(r)]);
      fail("pipeline {}: deadlock, every rank waits for an input that never comes:{}", s.name, waiting);
    }
  }
  for (int r = 0; r < P; ++r)
    if (!queued_w[size_t(r)].empty())
      fail("pipeline {}: rank {} ends with {} weight gradients never run", s.name, r, queued_w[size_t(r)].size());
  for (int d = 0; d < dirs; ++d)
    for (int m = 0; m < per; ++m)
      for (int st = 0; st < P; ++st)
        if (fwd.at(d, m, st) == kNotYet || bwd.at(d, m, st) == kNotYet)
          fail("pipeline {}: micro-batch {}.{} never gets its {} at stage {}", s.name, d, m,
               fwd.at(d, m, st) == kNotYet ? "forward" : "backward", st);
  res.step_time = *std::max_element(free.begin(), free.end());
  for (int r = 0; r < P; ++r) {
    res.idle.push_back(res.step_time - res.busy[size_t(r)]);
    res.bubble = std::max(res.bubble, res.idle.back());
  }
  return res;
}

double bubble_formula(const PipeSchedule& s, const PipeCosts& c) {
  const double P = s.stages, fb = c.FB > 0.0 ? c.FB : c.F + c.B + c.W;
  if (s.name == "dualpipe") return (P / 2 - 1) * (fb + c.B - 3 * c.W);
  return (P - 1) * (c.F + c.B + c.W);
}

}  // namespace seek::dist
