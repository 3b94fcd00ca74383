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
};

class AdamW {
 public:
  AdamW(const model::Params& p, AdamWConfig cfg);
  // One update with learning rate lr from the gradient `grad` (size p.size()). Clips first;
  // returns the global gradient norm before clipping. Non-trainable tensors are left alone.
  double step(model::Params& p, std::vector<float>& grad, double lr);

  int64_t steps() const { return t_; }
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_, trainable_;  // per element class, from ParamInfo
  int64_t t_ = 0;
};

struct Schedule {
  std::string kind = "cosine";  // cosine | wsd | constant
  double lr = 3e-3, min_lr = 3e-4;
  int64_t warmup = 100, total = 1000;
  double decay_fraction = 0.2;  // wsd: share of the steps spent in the final decay
  double at(int64_t step) const;  // learning rate of step (0-based)
};

}  // namespace seek::train
