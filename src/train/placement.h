// Which ranks of a training job hold which tensors. A job of D·P ranks runs D data-parallel
// pipelines of P stages (rank = replica·P + pipeline rank), and inside each stage's
// data-parallel group, groups of E consecutive replicas split the routed experts (rank i of a
// group holds experts [i·n/E, (i+1)·n/E) of every MoE layer). A pipeline rank holds the stages it
// runs (1F1B: its own; DualPipe: its own and stage P−1−r), so each rank stores only the weights
// it computes with, and so their gradients and optimizer state:
//   - a main layer's tensors: the stage whose layers include it;
//   - the final norm, the head and the MTP modules: the last stage;
//   - the embedding: the first stage, and the last too when the MTP modules embed with it or the
//     head is tied to it (their gradients add up there).
// A region is a set of tensors held by the same ranks; each rank's model::Params lays its
// regions out in one order all ranks agree on (keys()), and a region's gradients are summed
// (and under ZeRO-1 its optimizer state sharded) among exactly the ranks that hold it.
#pragma once
#include <compare>
#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "model/tensors.h"

namespace seek::train {

struct JobShape {
  int pipeline = 1;    // P
  int replicas = 1;    // D
  int experts = 1;     // E, dividing D
  int directions = 1;  // 2 under DualPipe
  std::vector<std::pair<int64_t, int64_t>> stage_layers;  // [P] main layers [first, last)
};

class Placement {
 public:
  struct Key {  // ordered as the regions are laid out
    int expert_share = -1;  // the routed-expert share it belongs to; -1: not a routed expert
    uint64_t stages = 0;    // the pipeline ranks holding it (bit r: pipeline rank r)
    auto operator<=>(const Key&) const = default;
  };

  Placement(const model::ModelConfig& cfg, JobShape shape);
  // Every region of the job, in the order each rank lays its own out: the tensors all expert
  // shares hold first, then the shares' experts; within each, by the pipeline ranks' mask.
  const std::vector<Key>& keys() const { return keys_; }
  // Whether world rank `rank` holds the tensors of keys()[key].
  bool holds(int rank, int key) const;
  // t's region (an index into keys()), or -1 where `rank` does not hold t.
  int region(const model::TensorSpec& t, int rank) const;
  // For model::Params: world rank `rank`'s part of the model.
  model::Placement of_rank(int rank) const;
  int pipeline_rank(int rank) const { return rank % shape_.pipeline; }
  int expert_rank(int rank) const { return (rank / shape_.pipeline) % shape_.experts; }

 private:
  Key key_of(const model::TensorSpec& t) const;
  model::ModelConfig cfg_;
  JobShape shape_;
  std::vector<Key> keys_;
};

}  // namespace seek::train
