// The model in float32 master weights: every tensor of the Hugging Face checkpoint, by its HF
// name, in one contiguous buffer laid out by the one tensor walk (tensors.h), plus views of it as
// ModelWeights for the forward and as ModelGrads (gradient pointers into a buffer of the same
// layout) for the backward. It lives with the model because everything that needs the model's
// float32 weights with gradients builds on it: the trainer (its optimizer, clipping and
// checkpoints see one flat vector), the gradient checks and, next, GRPO's frozen reference policy.
#pragma once
#include <cstdint>
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
};

class Params {
 public:
  // Expert parallelism (training): with a share of the routed experts ([begin, end) of every MoE
  // layer's, the MTP modules' too; `only` does not apply), a rank's Params holds every other
  // tensor and only the share's experts, laid out as two regions, [0, dense_size())
  // the tensors every rank holds and [dense_size(), size()) the share's experts (each in walk
  // order); the other experts' views and gradients are left empty. Without a share (the
  // default) every tensor is in walk order and dense_size() == size().

  // Every tensor of `cfg`'s checkpoint (model_tensors, Training order) except the MTP
  // modules' copies of the shared embedding and head, with matrices ~ N(0, init_std²) (output
  // projections o_proj and down_proj scaled by 1/√(2·layers), GPT-2 style), norm gains 1,
  // router bias 0.
  // With a share: the same values as the whole model's (the generator runs over every tensor).
  static Params init(const ModelConfig& cfg, double init_std, uint64_t seed,
                     const ExpertShare& share = {});
  // The same layout, values read from a checkpoint directory: F32/BF16/F16, or the FP8
  // block-scaled release (e4m3 codes · NAME_scale_inv per 128×128 block). The MTP copies, if the
  // checkpoint has them, are not read: in training they are the main tensors.
  static Params load(const ModelConfig& cfg, const std::string& dir, const ExpertShare& share = {});
  // The tensors of a Params with `share` (empty data; for offsets, e.g. another rank's layout).
  static Params layout_only(const ModelConfig& cfg, const ExpertShare& share = {});

  const ModelConfig& config() const { return cfg_; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  std::vector<float>& data() { return data_; }
  const std::vector<float>& data() const { return data_; }
  size_t size() const { return size_; }
  const ExpertShare& share() const { return share_; }
  // The tensors every rank holds come first when there is a share (see the class comment).
  size_t dense_size() const { return dense_size_; }
  const ParamInfo* find(const std::string& name) const;
  const ParamInfo* find(TensorRole role, int64_t layer) const;  // e.g. a layer's router bias
  float* ptr(const std::string& name);  // throws if absent

  // Views for model code (float32; small vectors copied: call sync() after changing data).
  ModelWeights weights() const;
  void sync(ModelWeights& w) const;
  // Gradient pointers into `grad` (same layout as data(); size() floats).
  ModelGrads grads(float* grad) const;

 private:
  void layout(const ModelConfig& cfg, const ExpertShare& share, bool allocate = true);
  // infos_[k] if it is `t` (the walk and infos_ share one order), then k + 1.
  const ParamInfo& next(size_t& k, const TensorSpec& t) const;
  ModelConfig cfg_;
  ExpertShare share_;
  std::vector<ParamInfo> infos_;
  std::vector<float> data_;
  size_t size_ = 0, dense_size_ = 0;
};

}  // namespace seek::model
