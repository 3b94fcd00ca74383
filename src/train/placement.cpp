#include "train/placement.h"

#include <algorithm>

#include "core/error.h"
#include "model/expert_parallel.h"

namespace seek::train {

Placement::Placement(const model::ModelConfig& cfg, JobShape shape) : cfg_(cfg), shape_(std::move(shape)) {
  const int P = shape_.pipeline;
  if (P < 1 || P > 64 || int(shape_.stage_layers.size()) != P)
    fail("placement: {} pipeline stages with {} layer ranges", P, shape_.stage_layers.size());
  if (shape_.experts < 1 || shape_.replicas % shape_.experts != 0)
    fail("placement: {} expert ranks in {} replicas", shape_.experts, shape_.replicas);
  for (const model::TensorSpec& t : model::model_tensors(cfg_, model::TensorOrder::Training))
    if (t.tied_to.empty()) keys_.push_back(key_of(t));
  std::sort(keys_.begin(), keys_.end());
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
}

Placement::Key Placement::key_of(const model::TensorSpec& t) const {
  const int P = shape_.pipeline;
  // The stages that compute with t.
  uint64_t stages = 0;
  const auto add = [&](int s) { stages |= uint64_t{1} << s; };
  if (t.mtp) {
    add(P - 1);
  } else if (t.layer >= 0) {
    for (int s = 0; s < P; ++s)
      if (t.layer >= shape_.stage_layers[size_t(s)].first && t.layer < shape_.stage_layers[size_t(s)].second) add(s);
  } else if (t.role == model::TensorRole::Embedding) {
    add(0);
    if (cfg_.num_nextn_predict_layers > 0 || cfg_.tie_word_embeddings) add(P - 1);
  } else {
    add(P - 1);  // the final norm and the head
  }
  // The pipeline ranks running those stages: stage s is rank s's in direction 0 and, under
  // DualPipe, rank P−1−s's in direction 1.
  Key k;
  for (int s = 0; s < P; ++s)
    if (stages >> s & 1) {
      k.stages |= uint64_t{1} << s;
      if (shape_.directions == 2) k.stages |= uint64_t{1} << (P - 1 - s);
    }
  if (t.expert >= 0 && shape_.experts > 1)
    k.expert_share = int(t.expert / (cfg_.n_routed_experts / shape_.experts));
  return k;
}

bool Placement::holds(int rank, int key) const {
  const Key& k = keys_[size_t(key)];
  return (k.stages >> pipeline_rank(rank) & 1) && (k.expert_share < 0 || k.expert_share == expert_rank(rank));
}

int Placement::region(const model::TensorSpec& t, int rank) const {
  const Key k = key_of(t);
  const auto it = std::lower_bound(keys_.begin(), keys_.end(), k);
  if (it == keys_.end() || *it != k) fail("placement: tensor {} has no region", t.name);
  const int key = int(it - keys_.begin());
  return holds(rank, key) ? key : -1;
}

model::Placement Placement::of_rank(int rank) const {
  return [this, rank](const model::TensorSpec& t) { return region(t, rank); };
}

}  // namespace seek::train
