// The element-wise ops' exponential on the vector units (kernels/ops.h, exp_shifted), compiled
// into avx2:: (ops_avx2.cpp) and avx512:: (ops_avx512.cpp) over kernels/simd_x86.h.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/simd_x86.h"

namespace seek::kernels::SEEK_SIMD_NS {

void exp_shifted(const float* x, float shift, float* y, int64_t n) {
  const V s = vset(shift);
  int64_t i = 0;
  for (; i + L <= n; i += L) vstore(y + i, vexp_nan(vsub(vload(x + i), s)));
  if (i < n) {  // the tail through the same vector code, so no value depends on its position
    float buf[L] = {};
    std::copy(x + i, x + n, buf);
    vstore(buf, vexp_nan(vsub(vload(buf), s)));
    std::copy(buf, buf + (n - i), y + i);
  }
}

}  // namespace seek::kernels::SEEK_SIMD_NS
