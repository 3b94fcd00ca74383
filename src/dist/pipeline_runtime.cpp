#include "dist/pipeline_runtime.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <deque>
#include <map>
#include <optional>

#include "core/error.h"
#include "model/weight_grad.h"

namespace seek::dist {

std::vector<std::pair<int64_t, int64_t>> stage_layers(int64_t layers, int stages,
                                                      const std::vector<int64_t>& counts) {
  if (stages < 1 || layers < stages)
    fail("pipeline: {} stages for a model of {} layers (each stage needs at least one)", stages, layers);
  std::vector<std::pair<int64_t, int64_t>> r;
  if (!counts.empty()) {
    int64_t at = 0;
    for (int64_t n : counts) {
      if (n < 1) fail("pipeline: a stage of {} layers (each needs at least one)", n);
      r.emplace_back(at, at + n);
      at += n;
    }
    if (int64_t(counts.size()) != stages || at != layers)
      fail("pipeline: stage layers {} for {} stages of a {}-layer model (one count per stage, "
           "summing to the layers)", fmt::format("{}", fmt::join(counts, ", ")), stages, layers);
    return r;
  }
  for (int s = 0; s < stages; ++s) {
    const Range x = shard(layers, s, stages);
    r.emplace_back(x.begin, x.end);
  }
  return r;
}

PipelineRuntime::PipelineRuntime(const Comm& pipe, PipeSchedule schedule, const model::ModelConfig& cfg,
                                 const std::vector<int64_t>& stage_counts)
    : pipe_(pipe), schedule_(std::move(schedule)), cfg_(cfg),
      layers_(stage_layers(cfg.num_hidden_layers, schedule_.stages, stage_counts)) {
  if (pipe.size() != schedule_.stages)
    fail("pipeline: a {}-stage schedule on {} ranks", schedule_.stages, pipe.size());
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

enum Kind { kActivation = 0, kGradient = 1 };
int tag(int micro, Kind k) { return micro * 2 + int(k); }

}  // namespace

std::vector<model::StepResult> PipelineRuntime::step(const model::ModelWeights& w, model::ModelGrads& g,
                                                     const std::vector<model::TokenBatch>& micro,
                                                     const std::vector<model::ObjectiveOptions>& opts) {
  const PipeSchedule& s = schedule_;
  const int P = s.stages, r = pipe_.rank();
  if (int(micro.size()) != s.micro_batches || opts.size() != micro.size())
    fail("pipeline: {} micro-batches ({} options) for a schedule of {}", micro.size(), opts.size(),
         s.micro_batches);
  const int per_dir = s.micro_batches / s.directions;
  const int64_t H = cfg_.hidden_size;
  times_ = {};
  stage_ops_.assign(size_t(P * kOps), 0.0);
  const auto count = [&](int stage, int op, double seconds) {
    stage_ops_[size_t(stage * kOps + 2 * op)] += seconds;
    stage_ops_[size_t(stage * kOps + 2 * op + 1)] += 1.0;
  };
  std::deque<int> queued_stage;  // the stage of each queued W

  std::map<int, model::StagePass> passes;  // by micro-batch, from its F to its backward
  std::vector<model::StepResult> results(micro.size());
  std::deque<model::WeightGradQueue> queued;  // split backwards' W parts, oldest first
  struct Pending {
    std::vector<float> data;
    Comm::Request req;
  };
  std::deque<Pending> sends;
  std::vector<float> in;

  const auto send = [&](const std::vector<float>& x, int dest, int t) {
    // Buffers of sends already delivered are freed as the step goes, not at its end.
    while (!sends.empty() && Comm::done(sends.front().req)) sends.pop_front();
    Pending& p = sends.emplace_back();
    p.data = x;
    p.req = pipe_.send_async(p.data, dest, t);
    times_.sent_floats += int64_t(x.size());
  };
  const auto receive = [&](int64_t n, int src, int t) {
    const double t0 = now_s();
    in.resize(size_t(n));
    pipe_.recv(in, src, t);
    times_.wait_s += now_s() - t0;
  };
  // Direction d's neighbours of this rank: the next stage's and the previous stage's.
  const auto next_rank = [&](int d) { return d == 0 ? r + 1 : r - 1; };
  const auto prev_rank = [&](int d) { return d == 0 ? r - 1 : r + 1; };

  const auto forward = [&](int dir, int m) {
    const int i = dir * per_dir + m, stage = s.stage_of(r, dir);
    const auto [first, last] = layers_[size_t(stage)];
    auto [it, fresh] = passes.try_emplace(i, cfg_, w, micro[size_t(i)], opts[size_t(i)], first, last);
    if (!fresh) fail("pipeline: micro-batch {} entered stage {} twice", i, stage);
    model::StagePass& pass = it->second;
    const int64_t n = pass.tokens() * H;
    if (stage > 0) receive(n, prev_rank(dir), tag(i, kActivation));
    const double t0 = now_s();
    const std::vector<float>& out = pass.forward(g, stage > 0 ? in.data() : nullptr);
    times_.f_s += now_s() - t0;
    ++times_.f_n;
    count(stage, 0, now_s() - t0);
    if (stage < P - 1) send(out, next_rank(dir), tag(i, kActivation));
  };
  const auto backward = [&](int dir, int m, bool split) {
    const int i = dir * per_dir + m, stage = s.stage_of(r, dir);
    auto it = passes.find(i);
    if (it == passes.end()) fail("pipeline: backward of micro-batch {} before its forward", i);
    model::StagePass& pass = it->second;
    if (stage < P - 1) receive(pass.tokens() * H, next_rank(dir), tag(i, kGradient));
    const double t0 = now_s();
    std::optional<model::DeferWeightGrads> defer;
    if (split) defer.emplace(queued.emplace_back());
    const std::vector<float>& dx = pass.backward(g, stage < P - 1 ? in.data() : nullptr);
    defer.reset();
    (split ? times_.bi_s : times_.b_s) += now_s() - t0;
    ++(split ? times_.bi_n : times_.b_n);
    count(stage, split ? 2 : 1, now_s() - t0);
    if (split) queued_stage.push_back(stage);
    if (stage > 0) send(dx, prev_rank(dir), tag(i, kGradient));
    results[size_t(i)] = pass.result();
    passes.erase(it);
    size_t held = 0;
    for (const auto& q : queued) held += q.bytes();
    times_.peak_queued_bytes = std::max(times_.peak_queued_bytes, held);
  };

  for (const PipeOp& op : s.ranks[size_t(r)]) {
    switch (op.kind) {
      case PipeKind::Forward: forward(op.dir, op.micro); break;
      case PipeKind::Backward: backward(op.dir, op.micro, op.split); break;
      case PipeKind::Weight: {
        if (queued.empty()) fail("pipeline: a W op with no split backward queued");
        const double t0 = now_s();
        queued.front().run();
        queued.pop_front();
        times_.w_s += now_s() - t0;
        ++times_.w_n;
        count(queued_stage.front(), 3, now_s() - t0);
        queued_stage.pop_front();
        break;
      }
      case PipeKind::ForwardBackward:
        forward(op.dir, op.micro);
        backward(op.dir_b, op.micro_b, false);
        break;
    }
  }
  if (!passes.empty() || !queued.empty())
    fail("pipeline: the {} schedule left {} micro-batches without a backward on rank {}", s.name,
         passes.size(), r);
  const double t0 = now_s();
  for (Pending& p : sends) Comm::wait(p.req);
  times_.wait_s += now_s() - t0;
  times_.busy_s = times_.f_s + times_.b_s + times_.bi_s + times_.w_s;
  return results;
}

model::StepResult PipelineRuntime::forward(const model::ModelWeights& w, const model::TokenBatch& batch,
                                           const model::ObjectiveOptions& opts) {
  if (opts.backward) fail("pipeline: forward() runs no backward (ObjectiveOptions::backward is set)");
  const int P = schedule_.stages, r = pipe_.rank();
  const auto [first, last] = layers_[size_t(r)];
  model::StagePass pass(cfg_, w, batch, opts, first, last);
  const int t = tag(schedule_.micro_batches, kActivation);  // no step's micro-batch has it
  std::vector<float> in;
  if (r > 0) {
    in.resize(size_t(pass.tokens() * cfg_.hidden_size));
    pipe_.recv(in, r - 1, t);
  }
  model::ModelGrads none;
  const std::vector<float>& out = pass.forward(none, r > 0 ? in.data() : nullptr);
  if (r < P - 1) {
    Comm::Request req = pipe_.send_async(out, r + 1, t);
    Comm::wait(req);
  }
  return pass.result();
}

PipelineRuntime::Prediction PipelineRuntime::predict() const {
  std::vector<double> v = stage_ops_;
  pipe_.allreduce_sum(v);
  const int P = schedule_.stages;
  Prediction p;
  p.costs = {0.0, 0.0, 0.0};
  for (int st = 0; st < P; ++st) {
    const double* o = v.data() + st * kOps;
    const auto mean = [&](int op) { return o[2 * op + 1] > 0 ? o[2 * op] / o[2 * op + 1] : 0.0; };
    PipeCosts c;
    c.F = mean(0);
    if (o[5] > 0) {  // split backwards: B and W apart (a full one, in an F&B pair, is their sum)
      c.B = mean(2);
      c.W = mean(3);
    } else {
      c.B = mean(1);
      c.W = 0.0;
    }
    p.stage_costs.push_back(c);
    p.costs.F += c.F / P;
    p.costs.B += c.B / P;
    p.costs.W += c.W / P;
  }
  const PipeSimResult r = simulate_pipeline(schedule_, p.stage_costs);
  for (double x : r.idle) p.sim_wait_s += x / double(r.idle.size());
  p.formula_s = bubble_formula(schedule_, p.costs);
  return p;
}

}  // namespace seek::dist
