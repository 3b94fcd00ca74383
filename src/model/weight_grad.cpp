#include "model/weight_grad.h"

#include <algorithm>

namespace seek::model {

namespace {
thread_local WeightGradQueue* deferring = nullptr;

void product(const float* dy, int64_t ldy, const float* x, int64_t ldx, float* dW, int64_t M,
             int64_t N, int64_t K, kernels::Precision p) {
  using kernels::Trans;
  kernels::gemm(Trans::Yes, Trans::No, N, K, M, dy, ldy, x, ldx, dW, K, true, p,
                kernels::Operand::Activation);
}
}  // namespace

void weight_grad(const float* dy, int64_t ldy, const float* x, int64_t ldx, float* dW, int64_t M,
                 int64_t N, int64_t K, kernels::Precision p) {
  if (!deferring) return product(dy, ldy, x, ldx, dW, M, N, K, p);
  WeightGradQueue::Item it{std::vector<float>(size_t(M * N)), std::vector<float>(size_t(M * K)), dW, M, N, K, p};
  for (int64_t i = 0; i < M; ++i) {
    std::copy_n(dy + i * ldy, N, it.dy.data() + i * N);
    std::copy_n(x + i * ldx, K, it.x.data() + i * K);
  }
  deferring->items_.push_back(std::move(it));
}

size_t WeightGradQueue::bytes() const {
  size_t b = 0;
  for (const Item& i : items_) b += (i.dy.size() + i.x.size()) * sizeof(float);
  return b;
}

void WeightGradQueue::run() {
  for (const Item& i : items_) product(i.dy.data(), i.N, i.x.data(), i.K, i.dW, i.M, i.N, i.K, i.p);
  items_.clear();
}

DeferWeightGrads::DeferWeightGrads(WeightGradQueue& q) : outer_(deferring) { deferring = &q; }
DeferWeightGrads::~DeferWeightGrads() { deferring = outer_; }

}  // namespace seek::model
