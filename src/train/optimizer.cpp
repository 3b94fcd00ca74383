#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"

namespace seek::train {

void AdamW::allocate(size_t n) {
  if (cfg_.bf16_moments) {
    mh_.assign(n, 0);
    vh_.assign(n, 0);
  } else {
    m_.assign(n, 0.0f);
    v_.assign(n, 0.0f);
  }
}

std::vector<float> AdamW::widened(const std::vector<float>& f, const std::vector<uint16_t>& h) {
  if (h.empty()) return f;
  std::vector<float> out(h.size());
  for (size_t i = 0; i < h.size(); ++i) out[i] = bf16_to_f32(h[i]);
  return out;
}

void AdamW::set_moments(const float* m, const float* v) {
  const size_t n = size();
  if (cfg_.bf16_moments) {
    for (size_t i = 0; i < n; ++i) mh_[i] = f32_to_bf16(m[i]), vh_[i] = f32_to_bf16(v[i]);
  } else {
    std::copy_n(m, n, m_.begin());
    std::copy_n(v, n, v_.begin());
  }
}

AdamW::AdamW(const model::Params& p, AdamWConfig cfg)
    : cfg_(cfg), decay_(p.size(), 0), trainable_(p.size(), 0) {
  allocate(p.size());
  for (const model::ParamInfo& i : p.infos()) {
    std::fill_n(decay_.begin() + ptrdiff_t(i.offset), i.numel, uint8_t(i.decay));
    std::fill_n(trainable_.begin() + ptrdiff_t(i.offset), i.numel, uint8_t(i.trainable));
  }
}

AdamW::AdamW(const model::Params& p, AdamWConfig cfg, int64_t begin, int64_t end) : cfg_(cfg), begin_(begin) {
  if (begin < 0 || end < begin || end > int64_t(p.size()))
    fail("AdamW: shard [{}, {}) of {} parameters", begin, end, p.size());
  decay_.assign(size_t(end - begin), 0);
  trainable_.assign(size_t(end - begin), 0);
  allocate(size_t(end - begin));
  for (const model::ParamInfo& i : p.infos()) {
    const int64_t a = std::max<int64_t>(begin, int64_t(i.offset));
    const int64_t b = std::min<int64_t>(end, int64_t(i.offset) + i.numel);
    for (int64_t k = a; k < b; ++k) {
      decay_[size_t(k - begin)] = uint8_t(i.decay);
      trainable_[size_t(k - begin)] = uint8_t(i.trainable);
    }
  }
}

AdamW::AdamW(size_t n, bool decay, AdamWConfig cfg) : cfg_(cfg), decay_(n, uint8_t(decay)), trainable_(n, 1) {
  allocate(n);
}

void AdamW::freeze(const model::ParamInfo& i) {
  const int64_t a = std::max<int64_t>(begin_, int64_t(i.offset));
  const int64_t b = std::min<int64_t>(begin_ + int64_t(size()), int64_t(i.offset) + i.numel);
  for (int64_t k = a; k < b; ++k) trainable_[size_t(k - begin_)] = 0;
}

double clip_coefficient(double norm, double max_norm) {
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1.
  return max_norm > 0 ? std::min(1.0, max_norm / (norm + 1e-6)) : 1.0;
}

double AdamW::step(model::Params& p, std::vector<float>& grad, double lr) {
  if (grad.size() != p.size()) fail("AdamW: {} gradients for {} parameters", grad.size(), p.size());
  return step(p.data().data(), grad, lr);
}

double AdamW::grad_sq(const std::vector<float>& grad) const {
  return sum_sq(grad.data(), int64_t(grad.size()));
}

double AdamW::shard_grad_sq(const float* grad) const { return sum_sq(grad, int64_t(size())); }

double AdamW::sum_sq(const float* grad, int64_t n) const {
  // Fixed-size blocks summed in a fixed order: the norm (and so every update) is bit-identical
  // run to run whatever the thread timing, which exact resume relies on.
  const int64_t blk = 1 << 16, nb = (n + blk - 1) / blk;
  std::vector<double> part(static_cast<size_t>(nb), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    double s = 0.0;
    for (int64_t i = b * blk; i < std::min(n, (b + 1) * blk); ++i)
      if (trainable_[size_t(i)]) s += double(grad[size_t(i)]) * double(grad[size_t(i)]);
    part[size_t(b)] = s;
  }
  double ss = 0.0;
  for (double s : part) ss += s;
  return ss;
}

double AdamW::step(float* w, std::vector<float>& grad, double lr) {
  if (grad.size() != size()) fail("AdamW: {} gradients for {} parameters", grad.size(), size());
  const double norm = std::sqrt(grad_sq(grad));
  update(w, grad.data(), int64_t(grad.size()), lr, norm);
  return norm;
}

void AdamW::step_shard(float* w, const float* grad, double lr, double global_norm) {
  update(w + begin_, grad, int64_t(size()), lr, global_norm);
}

void AdamW::update(float* w, const float* grad, int64_t n, double lr, double norm) {
  if (!std::isfinite(norm)) fail("gradient norm is {} at step {}: training diverged", norm, t_ + 1);
  const float clip = float(clip_coefficient(norm, cfg_.grad_clip));
  ++t_;
  const float b1 = float(cfg_.beta1), b2 = float(cfg_.beta2);
  // Bias corrections folded into the step size: m̂/(√v̂ + ε) with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ).
  const double c1 = 1.0 - std::pow(cfg_.beta1, double(t_)), c2 = 1.0 - std::pow(cfg_.beta2, double(t_));
  const float step = float(lr / c1), rc2 = float(1.0 / std::sqrt(c2)), eps = float(cfg_.eps);
  const float wd = float(lr * cfg_.weight_decay);
  // One element's update from its moments (read and written in float32).
  const auto one = [&](int64_t i, float& m, float& v) {
    const float g = grad[size_t(i)] * clip;
    m = b1 * m + (1.0f - b1) * g;
    v = b2 * v + (1.0f - b2) * g * g;
    if (decay_[size_t(i)]) w[i] -= wd * w[i];  // decoupled: not through the moments
    w[i] -= step * m / (std::sqrt(v) * rc2 + eps);
  };
  if (!cfg_.bf16_moments) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i)
      if (trainable_[size_t(i)]) one(i, m_[size_t(i)], v_[size_t(i)]);
  } else {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) {
      if (!trainable_[size_t(i)]) continue;
      float m = bf16_to_f32(mh_[size_t(i)]), v = bf16_to_f32(vh_[size_t(i)]);
      one(i, m, v);
      mh_[size_t(i)] = f32_to_bf16(m);
      vh_[size_t(i)] = f32_to_bf16(v);
    }
  }
}

double Schedule::at(int64_t s) const {
  if (warmup > 0 && s < warmup) return lr * double(s + 1) / double(warmup);
  if (kind == "constant") return lr;
  const double pi = 3.14159265358979323846;
  if (kind == "wsd") {
    const int64_t decay_start = total - int64_t(double(total) * decay_fraction);
    if (s < decay_start) return lr;
    const double f = double(s - decay_start) / double(std::max<int64_t>(1, total - decay_start));
    return min_lr + (lr - min_lr) * (1.0 - std::min(1.0, f));
  }
  const double f = std::min(1.0, double(s - warmup) / double(std::max<int64_t>(1, total - warmup)));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(pi * f));
}

}  // namespace seek::train
