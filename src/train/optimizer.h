// AdamW (decoupled weight decay; Loshchilov & Hutter) over the flat float32 master weights,
// global-norm gradient clipping, and the learning-rate schedules (warmup + cosine, or WSD:
// warmup, stable, decay).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/params.h"

namespace seek::train {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  double grad_clip = 1.0;  // max global L2 norm (0: no clipping)
  // V3 keeps AdamW's moments in BF16 (report §3.3): m and v are stored as bf16 (rounded to
  // nearest even after every update, computed in float32), half the optimizer state's memory.
  bool bf16_moments = false;
};

// torch.nn.utils.clip_grad_norm_'s factor: max_norm / (norm + 1e-6), at most 1 (max_norm 0:
// no clipping).
double clip_coefficient(double norm, double max_norm);

class AdamW {
 public:
  AdamW(const model::Params& p, AdamWConfig cfg);
  // ZeRO-1: the state of elements [begin, end) of p's flat vector only (m, v and the element
  // classes of that shard); step_shard updates that shard.
  AdamW(const model::Params& p, AdamWConfig cfg, int64_t begin, int64_t end);
  // A plain vector of n parameters trained beside a model (a reward model's score head): every
  // element trainable, weight-decayed when `decay`.
  AdamW(size_t n, bool decay, AdamWConfig cfg);
  // One update with learning rate lr from the gradient `grad` (size p.size()). Clips first;
  // returns the global gradient norm before clipping. Non-trainable tensors are left alone.
  double step(model::Params& p, std::vector<float>& grad, double lr);
  // The same on raw weights (grad.size() of them, the layout this optimizer was built for).
  double step(float* w, std::vector<float>& grad, double lr);
  // Σ grad² over the trainable elements, summed in a fixed order (bit-identical run to run). To
  // clip several parameter groups by one global norm, as torch's clip_grad_norm_ over all of
  // them: build each optimizer with grad_clip 0, scale every gradient by
  // clip_coefficient(√Σ grad_sq, max_norm), then step each.
  double grad_sq(const std::vector<float>& grad) const;
  // ZeRO-1's update of this optimizer's shard of w (the whole flat vector) from the shard's
  // gradient `grad` (end − begin values) and the global gradient norm of all shards (√ of the
  // sum of every shard's shard_grad_sq).
  void step_shard(float* w, const float* grad, double lr, double global_norm);
  double shard_grad_sq(const float* grad) const;  // Σ grad² over the shard's trainable elements
  int64_t begin() const { return begin_; }

  // Leaves tensor `i` alone from now on (no update, no weight decay, not in the norm), as torch
  // skips a parameter that gets no gradient: e.g. the LM head and MTP modules of a reward model,
  // whose score never reads them.
  void freeze(const model::ParamInfo& i);

  int64_t steps() const { return t_; }
  // The moments as float32 (checkpoints store them so; bf16 ones widen exactly).
  std::vector<float> m() const { return widened(m_, mh_); }
  std::vector<float> v() const { return widened(v_, vh_); }
  // Sets both moments (size() values each; rounded when they are kept in bf16).
  void set_moments(const float* m, const float* v);
  size_t size() const { return decay_.size(); }
  size_t moment_bytes() const { return (m_.size() + v_.size()) * 4 + (mh_.size() + vh_.size()) * 2; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  std::vector<float> m_, v_;      // float32 moments, or
  std::vector<uint16_t> mh_, vh_;  // bf16 ones (cfg_.bf16_moments); the other pair is empty
  static std::vector<float> widened(const std::vector<float>& f, const std::vector<uint16_t>& h);
  void allocate(size_t n);
  std::vector<uint8_t> decay_, trainable_;  // per element class, from ParamInfo
  int64_t t_ = 0;
  int64_t begin_ = 0;  // the first element m_[0] belongs to (ZeRO-1 shards)
  double sum_sq(const float* grad, int64_t n) const;
  void update(float* w, const float* grad, int64_t n, double lr, double norm);
};

struct Schedule {
  std::string kind = "cosine";  // cosine | wsd | constant
  double lr = 3e-3, min_lr = 3e-4;
  int64_t warmup = 100, total = 1000;
  double decay_fraction = 0.2;  // wsd: share of the steps spent in the final decay
  double at(int64_t step) const;  // learning rate of step (0-based)
};

}  // namespace seek::train
