// The weight-gradient products of a backward, dW[N, K] += dyᵀ · x over M rows (dy [M, N], x
// [M, K]). A backward runs them at once, or, for a pipeline stage's split backward (zero-bubble
// pipelines, DualPipe: B now, W later), queues them: inside a DeferWeightGrads scope every
// product of this thread is copied into a WeightGradQueue, whose run() is the stage's W pass.
// Either way each dW receives the same products in the same order, so a deferred W is bit for
// bit the backward's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gemm_train.h"

namespace seek::model {

// dW[N, K] (ld K) += dy[M, N]ᵀ (row stride ldy) · x[M, K] (row stride ldx), in precision p.
void weight_grad(const float* dy, int64_t ldy, const float* x, int64_t ldx, float* dW, int64_t M,
                 int64_t N, int64_t K, kernels::Precision p = kernels::Precision::F32);
// Tight strides: ldy = N, ldx = K.
inline void weight_grad(const float* dy, const float* x, float* dW, int64_t M, int64_t N, int64_t K,
                        kernels::Precision p = kernels::Precision::F32) {
  weight_grad(dy, N, x, K, dW, M, N, K, p);
}

class WeightGradQueue {
 public:
  bool empty() const { return items_.empty(); }
  size_t bytes() const;  // the copied operands held
  // Every queued product in the order queued; the queue is then empty.
  void run();

 private:
  friend void weight_grad(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                          int64_t, kernels::Precision);
  struct Item {
    std::vector<float> dy, x;  // [M, N], [M, K]
    float* dW;
    int64_t M, N, K;
    kernels::Precision p;
  };
  std::vector<Item> items_;
};

// While alive, this thread's weight_grad calls queue into `q` instead of running.
class DeferWeightGrads {
 public:
  explicit DeferWeightGrads(WeightGradQueue& q);
  ~DeferWeightGrads();
  DeferWeightGrads(const DeferWeightGrads&) = delete;
  DeferWeightGrads& operator=(const DeferWeightGrads&) = delete;

 private:
  WeightGradQueue* outer_;
};

}  // namespace seek::model
