// Runs a pipeline schedule (pipeline_schedule.h) on a model of time: each rank executes its ops in
// order, an op starts when its rank is free and its inputs exist (a forward needs the previous
// stage's forward of the same micro-batch, a backward the next stage's backward, or on the last
// stage the loss of its own forward; a p2p delay between ranks), and takes the op's cost. Gives
// the step time, each rank's idle time (the bubble) and its peak of micro-batches held for
// backward (activation memory). Checks the schedule too: every stage of every micro-batch must get
// exactly one forward and one backward, every queued W must be run, and no rank may wait forever.
#pragma once
#include <vector>

#include "dist/pipeline_schedule.h"

namespace seek::dist {

struct PipeCosts {
  double F = 1.0, B = 1.0, W = 1.0;  // one chunk's forward, input and weight backward
  double FB = 0.0;                   // F&B, an overlapped forward and full backward (0: F + B + W)
  double p2p = 0.0;                  // activation or gradient transfer between neighbouring ranks
};

struct PipeSimResult {
  double step_time = 0.0;
  std::vector<double> busy;          // [P] time each rank computes
  std::vector<double> idle;          // [P] step_time - busy
  double bubble = 0.0;               // max over ranks of idle
  std::vector<int> peak_in_flight;   // [P] most micro-batch chunks forwarded, not yet backwarded
  std::vector<std::vector<double>> start, end;  // [P][op] times of every op
};

PipeSimResult simulate_pipeline(const PipeSchedule& s, const PipeCosts& c);
// With each stage's own costs ([P], the p2p delay of the first): an op costs what its stage's
// does (a W its queued backward's stage's; an F&B pair without its own FB, F of the forward's
// stage + B + W of the backward's).
PipeSimResult simulate_pipeline(const PipeSchedule& s, const std::vector<PipeCosts>& stage_costs);

// The bubbles the V3 report gives (Table 2), in the same terms: 1F1B (P-1)(F+B+W) (B+W: its full
// backward), DualPipe (P/2-1)(F&B+B-3W).
double bubble_formula(const PipeSchedule& s, const PipeCosts& c);

}  // namespace seek::dist
