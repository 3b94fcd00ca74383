// attention_decode's one place of policy: the ISA (read at every call, like matmul's), the
// blocks' spread over threads, and the merge of their states in block order.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/attention_internal.h"
#include "kernels/matmul_internal.h"

namespace seek::kernels {
namespace {

void check(const DecodeArgs& a) {
  if (a.p == Precision::FP8) fail("attention_decode: FP8 precision is for training GEMMs only");
  if (a.nh <= 0 || a.n <= 0 || a.W <= 0 || a.dv <= 0 || a.dv > a.W || a.ldq < a.W || a.ldr < a.W)
    fail("attention_decode: bad shape nh {} n {} W {} dv {} ldq {} ldr {}", a.nh, a.n, a.W, a.dv,
         a.ldq, a.ldr);
}

void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  switch (cpu_isa()) {
    case Isa::Avx512: return avx512::decode_blocks(a, b0, b1, states);
    case Isa::Avx2: return avx2::decode_blocks(a, b0, b1, states);
    case Isa::Scalar: return portable::decode_blocks(a, b0, b1, states);
  }
}

}  // namespace

void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo,
                      Precision p) {
  const DecodeArgs a{q, nh, ldq, rows, n, ldr, W, dv, scale, p};
  check(a);
  const int64_t blocks = (n + kDecodeBlockRows - 1) / kDecodeBlockRows, sf = state_floats(nh, dv);
  thread_local std::vector<float> state_buf;  // the caller's; workers get the pointer
  state_buf.resize(size_t(blocks * sf));
  float* const states = state_buf.data();
  // A block is ~kDecodeBlockRows·nh·(W + dv) multiply-adds (~9 M for V3-sized heads per 16):
  // far more than a fork/join costs, so every block may go to its own thread.
  const int nt = int(std::min<int64_t>(max_threads(), blocks));
  parallel_run(nt, [&](int t, int nth) {
    const auto [b0, b1] = split_range(blocks, t, nth);
    if (b0 < b1) decode_blocks(a, b0, b1, states + b0 * sf);
  });
  // Merge: with M = max_b m_b, out = Σ_b e^(m_b − M)·acc_b / Σ_b e^(m_b − M)·l_b, in block order.
  std::vector<float> w(static_cast<size_t>(blocks));
  for (int64_t h = 0; h < nh; ++h) {
    float M = -std::numeric_limits<float>::infinity();
    for (int64_t b = 0; b < blocks; ++b) M = std::max(M, states[b * sf + h]);
    float l = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      const float* st = states + b * sf;
      w[size_t(b)] = std::exp(st[h] - M);
      l += w[size_t(b)] * st[nh + h];
    }
    float* o = out + h * ldo;
    const float inv = 1.0f / l;
    if (blocks == 1) {
      const float* acc = states + 2 * nh + h * dv;
      for (int64_t c = 0; c < dv; ++c) o[c] = acc[c] * inv;
      continue;
    }
    std::fill(o, o + dv, 0.0f);
    for (int64_t b = 0; b < blocks; ++b) {
      const float* acc = states + b * sf + 2 * nh + h * dv;
      const float wb = w[size_t(b)];
      for (int64_t c = 0; c < dv; ++c) o[c] += wb * acc[c];
    }
    for (int64_t c = 0; c < dv; ++c) o[c] *= inv;
  }
}

namespace ref {

void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo,
                      Precision p) {
  check(DecodeArgs{q, nh, ldq, rows, n, ldr, W, dv, scale, p});
  const bool bf = p == Precision::BF16;
  auto r = [&](float v) { return bf ? round_bf16(v) : v; };
  std::vector<float> s(static_cast<size_t>(n));
  for (int64_t h = 0; h < nh; ++h) {
    const float* qh = q + h * ldq;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      float d = 0.0f;
      for (int64_t k = 0; k < W; ++k) d += r(qh[k]) * r(rows[j * ldr + k]);
      s[size_t(j)] = scale * d;
      mx = std::max(mx, s[size_t(j)]);
    }
    float l = 0.0f;
    for (int64_t j = 0; j < n; ++j) l += s[size_t(j)] = std::exp(s[size_t(j)] - mx);
    for (int64_t c = 0; c < dv; ++c) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) acc += r(s[size_t(j)]) * r(rows[j * ldr + c]);
      out[h * ldo + c] = acc / l;
    }
  }
}

}  // namespace ref

}  // namespace seek::kernels
