// Decode attention over MLA's latent cache (the absorbed form, model.py attn_impl "absorb"):
// one query token, nh heads that all attend to the same cache rows (multi-query), each row both
// the key [c_kv | k_pe] and, through its first dv columns (c_kv), the value.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace seek::kernels {

// out[h, :] = Σ_j softmax_j(scale · q[h]·rows[j]) · rows[j, 0:dv]
//   q: [nh, W] (row stride ldq), rows: [n, W] (ldr), out: [nh, dv] (ldo); n >= 1, dv <= W.
// Flash decoding: one pass over the rows, all heads per row, with an online softmax (a running
// max and sum per head) and fp32 accumulators; rows are cut into blocks of kDecodeBlockRows,
// blocks are spread over up to max_threads() threads and their partial states merged in block
// order, so the result does not depend on the thread count (and is the same inside an outer
// parallel region, where it runs on one thread).
// Precision::F32: fp32 products. BF16: q, the rows and the probabilities (in the weighted sum;
// the softmax denominator stays fp32) are rounded to bf16 and multiplied on the CPU's bf16 dot
// units where it has them; sums stay fp32. FP8 is an Error.
void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo,
                      Precision p);

// Rows per block: the unit of work split across threads and of the merge. Fixed, so block
// boundaries (and the result) are a function of n alone.
inline constexpr int64_t kDecodeBlockRows = 512;

namespace ref {
// The definition: scores, then a softmax with std::exp, then the weighted sum, in plain loops
// (for BF16 the same roundings as above).
void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo,
                      Precision p);
}  // namespace ref

}  // namespace seek::kernels
