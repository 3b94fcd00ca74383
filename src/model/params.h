// The model in float32 master weights: every tensor of the Hugging Face checkpoint, by its HF
// name, in one contiguous buffer laid out by the one tensor walk (tensors.h), plus views of it as
// ModelWeights for the forward and as ModelGrads (gradient pointers into a buffer of the same
// layout) for the backward. It lives with the model because everything that needs the model's
// float32 weights with gradients builds on it: the trainer (its optimizer, clipping and
// checkpoints see one flat vector), the gradient checks and, next, GRPO's frozen reference policy.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/grads.h"
#include "model/tensors.h"
#include "model/weights.h"

namespace seek::model {

struct ParamInfo {
  TensorSpec spec;              // role, layer, expert (from the one tensor list)
  // spec's, at hand:
  std::string name;             // HF name, e.g. model.layers.3.self_attn.kv_b_proj.weight
  std::vector<int64_t> shape;
  int64_t numel = 0;
  bool trainable = true;        // false: the router's correction bias (set by balancing)
  bool decay = true;            // weight decay: matrices yes, norm gains no
  size_t offset = 0;            // into Params::data
  int region = 0;               // its region (Placement)
};

// Which tensors a Params holds and where (a rank's part of the model under expert or pipeline
// parallelism): region(t) >= 0 puts t in that region of the buffer, the regions laid out in
// increasing order and each one's tensors in walk order; -1 leaves t out (its weight views and
// gradient pointers stay empty). Empty: every tensor, in region 0.
using Placement = std::function<int(const TensorSpec&)>;

struct ParamRegion {
  int id = 0;
  size_t begin = 0, end = 0;  // [begin, end) of Params::data
};

class Params {
 public:
  // Every tensor of `cfg`'s checkpoint (model_tensors, Training order) that `placement` holds,
  // except the MTP modules' copies of the shared embedding and head, with matrices
  // ~ N(0, init_std²) (output projections o_proj and down_proj scaled by 1/√(2·layers), GPT-2
  // style), norm gains 1, router bias 0. A part of the model gets the whole model's values (the
  // generator runs over every tensor).
  static Params init(const ModelConfig& cfg, double init_std, uint64_t seed,
                     const Placement& placement = {});
  // The same layout, values read from a checkpoint directory: F32/BF16/F16, or the FP8
  // block-scaled release (e4m3 codes · NAME_scale_inv per 128×128 block); only the tensors
  // `placement` holds are read. The MTP copies, if the checkpoint has them, are not read: in
  // training they are the main tensors.
  static Params load(const ModelConfig& cfg, const std::string& dir, const Placement& placement = {});
  // The tensors of a Params with `placement` (empty data; for offsets, e.g. another rank's layout).
  static Params layout_only(const ModelConfig& cfg, const Placement& placement = {});

  const ModelConfig& config() const { return cfg_; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  std::vector<float>& data() { return data_; }
  const std::vector<float>& data() const { return data_; }
  size_t size() const { return size_; }
  const std::vector<ParamRegion>& regions() const { return regions_; }  // in layout order
  const ParamInfo* find(const std::string& name) const;
  const ParamInfo* find(TensorRole role, int64_t layer) const;  // e.g. a layer's router bias
  float* ptr(const std::string& name);  // throws if absent

  // Views for model code (float32; small vectors copied: call sync() after changing data).
  ModelWeights weights() const;
  void sync(ModelWeights& w) const;
  // Gradient pointers into `grad` (same layout as data(); size() floats).
  ModelGrads grads(float* grad) const;

 private:
  void layout(const ModelConfig& cfg, const Placement& placement, bool allocate = true);
  // infos_[k] if it is `t`, then k + 1; null if this Params does not hold t (infos_ is a
  // subsequence of the walk, in its order).
  const ParamInfo* next(size_t& k, const TensorSpec& t) const;
  ModelConfig cfg_;
  std::vector<ParamInfo> infos_;
  std::vector<ParamRegion> regions_;
  std::vector<float> data_;
  size_t size_ = 0;
};

}  // namespace seek::model
