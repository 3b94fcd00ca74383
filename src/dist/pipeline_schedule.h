// Pipeline-parallel schedules as data: for every pipeline rank, the ordered list of what it runs
// (forward and backward chunks of which micro-batch, in which direction), so one description
// drives both a runtime and the simulator (pipeline_sim.h) that measures its bubble and memory.
//
// Terms (V3 report §3.2.1, Zero Bubble PP): F is a chunk's forward, B its backward for the input
// (the gradient sent to the previous stage), W its backward for the weights. A full backward
// runs B and W together; a split one runs B now and queues W, which a later W op runs (first in,
// first out). A "forward-backward" op runs the F of one micro-batch and the full backward of
// another overlapped (DualPipe's F&B pair: one chunk's compute hides the other's all-to-all).
//
// Directions: micro-batches of direction 0 enter at rank 0 and flow to rank P-1 (stage s on rank
// s); DualPipe also feeds direction 1 from rank P-1 (stage s on rank P-1-s), so every rank holds
// two chunks of the model, stage r and stage P-1-r.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace seek::dist {

enum class PipeKind : uint8_t {
  Forward,          // F(dir, micro)
  Backward,         // B(dir, micro); with `split` its W is queued, else B and W at once
  Weight,           // the oldest queued W of this rank
  ForwardBackward,  // F(dir, micro) overlapped with the full backward of (dir_b, micro_b)
};

struct PipeOp {
  PipeKind kind = PipeKind::Forward;
  int dir = 0, micro = 0;      // the forward's (or the backward's, for Backward)
  int dir_b = 0, micro_b = 0;  // ForwardBackward: its backward's
  bool split = false;          // Backward: input gradient now, weight gradient queued
};

struct PipeSchedule {
  std::string name;
  int stages = 0;          // pipeline ranks P
  int micro_batches = 0;   // per step, both directions together
  int directions = 1;      // 1 (1F1B) or 2 (DualPipe)
  std::vector<std::vector<PipeOp>> ranks;  // [P] each rank's ops in order
  // The stage rank r runs for micro-batches of direction `dir`.
  int stage_of(int rank, int dir) const { return dir == 0 ? rank : stages - 1 - rank; }
  // Model chunks (stage copies) a rank holds: its parameter memory in stages.
  int chunks_per_rank() const { return directions; }
};

// 1F1B (PipeDream-flush): rank r runs min(P-r-1, M) forwards, then alternates one forward and one
// full backward, then drains its backwards. M >= 1.
PipeSchedule schedule_1f1b(int stages, int micro_batches);

// DualPipe (V3): M micro-batches, half from each end; P even, M even and M >= 2P (errors
// otherwise). Per rank, with h = min(r, P-1-r) and phases 0/1 (phase 0 the rank's own side's
// direction): (P/2-h-1)·2 F0; (h+1) × F0 F1; (P/2-h-1) × B1(split) W F1; (M/2-P+h+1) × (F0&B1)
// (F1&B0) (the middle ranks run their first pair apart); (P/2-h-1) × B1 (F1&B0); (h+1) × B1 B0
// (the later half split); (P/2-h-1) × W B0(split); (h+1) × W.
PipeSchedule schedule_dualpipe(int stages, int micro_batches);

// By name: "1f1b" or "dualpipe".
PipeSchedule make_schedule(const std::string& name, int stages, int micro_batches);

// One line per rank of F/B/W/FB op names with micro-batch numbers, e.g. "F0.3 B1.2s W FB(0.4,1.1)"
// (direction.micro; s: split).
std::string describe(const PipeSchedule& s);

}  // namespace seek::dist
