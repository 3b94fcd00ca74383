// Non-owning views of tensors in their stored dtype: what model code hands to kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace seek {

// A row-major matrix W [rows, cols] in its stored dtype, e.g. a linear weight [out, in]
// (HF layout, y = x · Wᵀ). `ld` is the row stride in elements (>= cols), so a view can be a
// sub-block of a larger matrix (one head's rows of kv_b_proj, the c_kv columns of a KV cache).
// For the block types (Q8_0, Q4_0, Q4_K, Q6_K) `ld` and column slices are whole blocks.
// FP8 weights carry `scale_inv` [ceil(full_rows/128), scale_ld] (F32): W[i,j] = q[i,j] ·
// scale_inv[(row0+i)/128, (col0+j)/128], where row0/col0 locate this view in the full tensor.
struct WeightView {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0, ld = 0;
  const void* data = nullptr;
  const float* scale_inv = nullptr;
  int64_t scale_ld = 0;
  int64_t row0 = 0, col0 = 0;

  // A float32 matrix owned elsewhere (activations, a KV cache, master weights).
  static WeightView f32(const float* p, int64_t rows, int64_t cols, int64_t ld) {
    WeightView v;
    v.rows = rows;
    v.cols = cols;
    v.ld = ld;
    v.data = p;
    return v;
  }

  // A bf16 matrix owned elsewhere (a BF16 KV cache).
  static WeightView bf16(const uint16_t* p, int64_t rows, int64_t cols, int64_t ld) {
    WeightView v = f32(nullptr, rows, cols, ld);
    v.dtype = DType::BF16;
    v.data = p;
    return v;
  }

  WeightView slice_rows(int64_t r0, int64_t n) const;
  WeightView slice_cols(int64_t c0, int64_t n) const;
  float at(int64_t i, int64_t j) const;  // dequantized element (slow; references and tests)
};

}  // namespace seek
