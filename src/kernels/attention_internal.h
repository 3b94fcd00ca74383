// Private to the attention kernels: the per-ISA entry points attention.cpp dispatches to.
#pragma once
#include <cstdint>

#include "kernels/attention.h"

namespace seek::kernels {

// One attention_decode call, as every variant sees it.
struct DecodeArgs {
  const float* q;
  int64_t nh, ldq;
  const float* rows;
  int64_t n, ldr, W, dv;
  float scale;
  Precision p;
};

// The unnormalized state of one block of rows [r0, r1), per head h:
//   m[h] = max_j s_j,  l[h] = Σ_j e^(s_j − m[h]),  acc[h, c] = Σ_j e^(s_j − m[h]) · rows[j, c]
// (s_j = scale · q[h]·rows[j]). `states` points at block b0's; block b's is at
// states + (b − b0) · state_floats(nh, dv): m [nh], then l [nh], then acc [nh, dv].
inline int64_t state_floats(int64_t nh, int64_t dv) { return nh * (dv + 2); }

// Each variant computes the states of blocks [b0, b1) on the calling thread.
#define SEEK_ATTENTION_VARIANT(ns) \
  namespace ns {                   \
  void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states); \
  }
SEEK_ATTENTION_VARIANT(portable)
SEEK_ATTENTION_VARIANT(avx2)
SEEK_ATTENTION_VARIANT(avx512)
#undef SEEK_ATTENTION_VARIANT

}  // namespace seek::kernels
