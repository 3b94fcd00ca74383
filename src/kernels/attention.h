// Decode attention over MLA's latent cache (the absorbed form, model.py attn_impl "absorb"):
// one query token, nh heads that all attend to the same cache rows (multi-query), each row both
// the key [c_kv | k_pe] and, through its first dv columns (c_kv), the value.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace seek::kernels {

// out[h, :] = Σ_j softmax_j(scale · q[h]·rows[j]) · rows[j, 0:dv]
//   q: [nh, W] (row stride ldq), rows: [n, W] (ldr), out: [nh, dv] (ldo); n >= 1, dv <= W.
// Flash decoding: rows are cut into blocks of kDecodeBlockRows, spread over up to max_threads()
// threads; each block's state (its max, sum and weighted sum) is computed on fp32 accumulators
// and the states are merged in block order, so the result does not depend on the thread count
// (and is the same inside an outer parallel region, where it runs on one thread).
//
// F32 rows (--precise, the fixture semantics): fp32 products.
// BF16 rows (the KV cache of the default BF16 precision, stored as model.py stores it): the
// products run on the CPU's bf16 dot units where it has them (twice the fp32 FMA rate, half the
// bytes), with these roundings, which define the result up to the order of fp32 sums:
//   - q is rounded to bf16;  s_j = scale · Σ_k q[k]·rows[j, k]
//   - in each block b: m_b = max_j s_j, e_j = e^(s_j − m_b), l_b = Σ_j e_j (fp32), and the
//     weighted sum a_b = Σ_j bf16(e_j) · rows[j, 0:dv];
//   - out = Σ_b e^(m_b − M) · a_b / Σ_b e^(m_b − M) · l_b  (M = max_b m_b).
// The weights are rounded relative to their block's max, a function of the rows alone, so a
// prefill that attends to the same rows through products (attention_weights_bf16 below) gets the
// same weights and the same result: a prompt's last token decoded after a cached prefix gives the
// logits its prefill gave (where the prefill takes the absorbed form, model/mla.cpp).
void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo);
void attention_decode(const float* q, int64_t nh, int64_t ldq, const uint16_t* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo);

// Rows per block: the unit of work split across threads, of the merge and of the BF16 weights'
// rounding. Fixed, so block boundaries (and the result) are a function of n alone.
inline constexpr int64_t kDecodeBlockRows = 512;

// The weights attention_decode gives BF16 rows, for one query whose scores (already scaled) over
// rows [0, n) are s: in place, s_j ← bf16(e^(s_j − m_b)) · e^(m_b − M) / Σ_b e^(m_b − M)·l_b, with
// the same exponential as the decode kernel of this CPU. Σ_j s_j · rows[j, 0:dv] is then the
// decode kernel's output up to fp32 rounding.
void attention_weights_bf16(float* s, int64_t n);

namespace ref {
// The definitions: scores, then per block a max, std::exp and the weighted sum, merged, in plain
// loops (for BF16 rows with the roundings above).
void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo);
void attention_decode(const float* q, int64_t nh, int64_t ldq, const uint16_t* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo);
}  // namespace ref

}  // namespace seek::kernels
