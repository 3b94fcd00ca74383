// Private to the attention kernels: the per-ISA entry points attention.cpp dispatches to.
#pragma once
#include <cstdint>

#include "kernels/attention.h"

namespace seek::kernels {

// One attention_decode call, as every variant sees it: rows are F32 (`rows`) or BF16 (`rows16`,
// the other null).
struct DecodeArgs {
  const float* q;
  int64_t nh, ldq;
  const float* rows;
  const uint16_t* rows16;
  int64_t n, ldr, W, dv;
  float scale;
  bool bf16() const { return rows16 != nullptr; }
};

// The unnormalized state of one block of rows [r0, r1), per head h:
//   m[h] = max_j s_j,  l[h] = Σ_j e^(s_j − m[h]),  acc[h, c] = Σ_j e^(s_j − m[h]) · rows[j, c]
// (s_j = scale · q[h]·rows[j]; for BF16 rows with the roundings attention.h states). `states`
// points at block b0's; block b's is at states + (b − b0) · state_floats(nh, dv): m [nh], then
// l [nh], then acc [nh, dv].
inline int64_t state_floats(int64_t nh, int64_t dv) { return nh * (dv + 2); }

// Each variant computes the states of blocks [b0, b1) on the calling thread, and, for
// attention_weights_bf16, one block of a score row in place: s[0, n) ← bf16(e^(s_j − m)) with
// m = max_j s_j (returned) and *l = Σ_j e^(s_j − m), with the exponential its decode_blocks uses.
#define SEEK_ATTENTION_VARIANT(ns)                                                  \
  namespace ns {                                                                    \
  void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states);   \
  float block_weights_bf16(float* s, int64_t n, float* l);                          \
  }
SEEK_ATTENTION_VARIANT(portable)
SEEK_ATTENTION_VARIANT(avx2)
SEEK_ATTENTION_VARIANT(avx512)
#undef SEEK_ATTENTION_VARIANT

}  // namespace seek::kernels
