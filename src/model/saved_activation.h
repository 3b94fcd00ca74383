// An activation a training forward keeps for its backward (the tapes): as float32, or under FP8
// training as V3 stores it (§3.3.2, low-precision storage): e4m3 codes with one scale per 1×128
// tile of a row, one byte per value. The inputs of the linear layers and of SwiGLU are kept so;
// the forward's FP8 GEMMs quantize their inputs to the same tiles, so the cached values are the
// ones those GEMMs saw. The backward decodes them into a buffer of its own (the weight-gradient
// GEMM then re-quantizes them along tokens: V3's dequantize, transpose, re-quantize).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/fp8.h"

namespace seek::model {

class SavedActivation {
 public:
  SavedActivation() = default;
  // x [rows, cols], kept as it is or as FP8 tiles.
  void keep(std::vector<float> x, int64_t cols, bool fp8);
  void keep(const float* x, int64_t rows, int64_t cols, bool fp8);
  // The values, [rows, cols]: the kept floats, or the FP8 codes decoded into `buf`.
  const float* values(std::vector<float>& buf) const;
  size_t size() const { return fp8_ ? q_.codes.size() : f32_.size(); }  // values
  bool empty() const { return size() == 0; }
  size_t bytes() const;  // memory held

 private:
  bool fp8_ = false;
  std::vector<float> f32_;
  kernels::Fp8Operand q_;
};

}  // namespace seek::model
