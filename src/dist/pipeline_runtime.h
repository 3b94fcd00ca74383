// The pipeline-parallel runtime: one training step's micro-batches through this rank's model
// stages in the order a PipeSchedule gives (pipeline_schedule.h, the op lists the simulator
// times), activations sent to the next stage's rank and gradients to the previous one's.
//
// Stages are contiguous ranges of the main layers (model::StagePass): stage 0 embeds, the last
// stage runs the heads, the MTP modules and the objective. Rank r of the pipeline runs stage r
// for direction 0 and, under DualPipe, stage P-1-r for direction 1, so its micro-batches of
// direction 1 enter at rank P-1. A split backward (B) queues its weight-gradient products
// (model/weight_grad.h) until the rank's next W op; ForwardBackward runs its forward, then its
// backward (no second stream on a CPU to overlap them with). Sends never block (a pipeline of
// blocking sends would deadlock 1F1B's steady phase); receives wait, and that wait is the bubble.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "dist/comm.h"
#include "dist/pipeline_schedule.h"
#include "dist/pipeline_sim.h"
#include "model/transformer.h"

namespace seek::dist {

// The main layers [first, last) of each of `stages` stages: contiguous, sizes differing by at
// most one, the extra layers on the earlier stages (the last one also runs the heads and MTP);
// or `counts` layers each (a split balanced by hand: the last stage's head and MTP modules cost
// about a layer each).
std::vector<std::pair<int64_t, int64_t>> stage_layers(int64_t layers, int stages,
                                                      const std::vector<int64_t>& counts = {});

// Where one rank's time in a step went.
struct PipelineTimes {
  double busy_s = 0.0;   // running its F, B and W ops
  double wait_s = 0.0;   // waiting for another stage's activations or gradients, or for sends
  // Compute time by op: forwards, full backwards (input and weight gradients), split backwards
  // (input gradients only) and W ops; how many of each.
  double f_s = 0.0, b_s = 0.0, bi_s = 0.0, w_s = 0.0;
  int f_n = 0, b_n = 0, bi_n = 0, w_n = 0;
  int64_t sent_floats = 0;
  size_t peak_queued_bytes = 0;  // weight-gradient operands held for W ops at the peak
};

class PipelineRuntime {
 public:
  // `pipe`: this pipeline's ranks (its size is the schedule's stages).
  PipelineRuntime(const Comm& pipe, PipeSchedule schedule, const model::ModelConfig& cfg,
                  const std::vector<int64_t>& stage_counts = {});
  // One step: micro[i] (every rank of the pipeline passes the same batches) is micro-batch
  // i % (M / directions) of direction i / (M / directions). Gradients accumulate into g as
  // forward_backward's do; returns each micro-batch's result from the stage this rank ran it
  // through (StepResult::moe_layers names the stage's MoE layers).
  // opts[i] are micro-batch i's objective options.
  std::vector<model::StepResult> step(const model::ModelWeights& w, model::ModelGrads& g,
                                      const std::vector<model::TokenBatch>& micro,
                                      const std::vector<model::ObjectiveOptions>& opts);
  // A forward without backward (validation): `batch` through stages 0..P−1 in turn (rank r runs
  // stage r), each rank returning its stage's part of the result (the objective's terms on the
  // last stage; its own MoE layers' loads, named by StepResult::moe_layers). opts.backward must
  // be false.
  model::StepResult forward(const model::ModelWeights& w, const model::TokenBatch& batch,
                            const model::ObjectiveOptions& opts);
  const PipelineTimes& times() const { return times_; }  // of the last step
  // What the last step's bubble should have been: the simulator (pipeline_sim.h) on this
  // schedule with each stage's costs as measured (an op kind's mean time at that stage, over the
  // ranks that ran it; without split backwards B is the full backward and W 0), and the V3
  // report's formula on the stages' mean costs. Collective over the pipeline's ranks.
  struct Prediction {
    std::vector<PipeCosts> stage_costs;  // [P]
    PipeCosts costs;                     // their mean
    double sim_wait_s = 0.0;             // the simulator's idle time, mean over ranks
    double formula_s = 0.0;
  };
  Prediction predict() const;
  const PipeSchedule& schedule() const { return schedule_; }

 private:
  const Comm& pipe_;
  PipeSchedule schedule_;
  const model::ModelConfig& cfg_;
  std::vector<std::pair<int64_t, int64_t>> layers_;
  PipelineTimes times_;
  // Per stage, this rank's last step: F time, count; full B; split B; W (kOps values each).
  static constexpr int kOps = 8;
  std::vector<double> stage_ops_;
};

}  // namespace seek::dist
