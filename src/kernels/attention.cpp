// attention_decode's one place of policy: the ISA (read at every call, like matmul's), the
// blocks' spread over threads, and the merge of their states in block order.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/attention_internal.h"
#include "kernels/matmul_internal.h"

namespace seek::kernels {
namespace {

void check(const DecodeArgs& a) {
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

// The merge weights of blocks with maxima m[0, blocks): w_b = e^(m_b − M).
float merge_weights(const float* m, int64_t stride, int64_t blocks, float* w) {
  float M = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < blocks; ++b) M = std::max(M, m[b * stride]);
  for (int64_t b = 0; b < blocks; ++b) w[b] = std::exp(m[b * stride] - M);
  return M;
}

void decode(const DecodeArgs& a, float* out, int64_t ldo) {
  check(a);
  const int64_t nh = a.nh, dv = a.dv;
  const int64_t blocks = (a.n + kDecodeBlockRows - 1) / kDecodeBlockRows, sf = state_floats(nh, dv);
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
    merge_weights(states + h, sf, blocks, w.data());
    float l = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) l += w[size_t(b)] * states[b * sf + nh + h];
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

}  // namespace

void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo) {
  decode(DecodeArgs{q, nh, ldq, rows, nullptr, n, ldr, W, dv, scale}, out, ldo);
}

void attention_decode(const float* q, int64_t nh, int64_t ldq, const uint16_t* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo) {
  decode(DecodeArgs{q, nh, ldq, nullptr, rows, n, ldr, W, dv, scale}, out, ldo);
}

void attention_weights_bf16(float* s, int64_t n) {
  if (n <= 0) return;
  const int64_t blocks = (n + kDecodeBlockRows - 1) / kDecodeBlockRows;
  std::vector<float> m(static_cast<size_t>(blocks)), l(m), w(m);
  for (int64_t b = 0; b < blocks; ++b) {
    float* sb = s + b * kDecodeBlockRows;
    const int64_t nb = std::min(kDecodeBlockRows, n - b * kDecodeBlockRows);
    switch (cpu_isa()) {
      case Isa::Avx512: m[size_t(b)] = avx512::block_weights_bf16(sb, nb, &l[size_t(b)]); break;
      case Isa::Avx2: m[size_t(b)] = avx2::block_weights_bf16(sb, nb, &l[size_t(b)]); break;
      case Isa::Scalar: m[size_t(b)] = portable::block_weights_bf16(sb, nb, &l[size_t(b)]); break;
    }
  }
  merge_weights(m.data(), 1, blocks, w.data());
  float L = 0.0f;
  for (int64_t b = 0; b < blocks; ++b) L += w[size_t(b)] * l[size_t(b)];
  for (int64_t b = 0; b < blocks; ++b) {
    const float f = w[size_t(b)] / L;
    const int64_t j1 = std::min(n, (b + 1) * kDecodeBlockRows);
    for (int64_t j = b * kDecodeBlockRows; j < j1; ++j) s[j] *= f;
  }
}

namespace ref {

namespace {
template <class Row>
void decode_ref(const float* q, int64_t nh, int64_t ldq, const Row* rows, int64_t n, int64_t ldr,
                int64_t W, int64_t dv, float scale, float* out, int64_t ldo) {
  constexpr bool bf = std::is_same_v<Row, uint16_t>;
  check(DecodeArgs{q, nh, ldq, nullptr, nullptr, n, ldr, W, dv, scale});
  auto row = [&](int64_t j, int64_t k) {
    if constexpr (bf) return bf16_to_f32(rows[j * ldr + k]);
    else return rows[j * ldr + k];
  };
  auto r = [&](float v) { return bf ? round_bf16(v) : v; };
  const int64_t blocks = (n + kDecodeBlockRows - 1) / kDecodeBlockRows;
  std::vector<float> s(static_cast<size_t>(n)), m(static_cast<size_t>(blocks)), l(m), w(m);
  std::vector<double> acc(size_t(blocks * dv));
  for (int64_t h = 0; h < nh; ++h) {
    const float* qh = q + h * ldq;
    for (int64_t j = 0; j < n; ++j) {
      float d = 0.0f;
      for (int64_t k = 0; k < W; ++k) d += r(qh[k]) * row(j, k);
      s[size_t(j)] = scale * d;
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * kDecodeBlockRows, j1 = std::min(n, j0 + kDecodeBlockRows);
      float mx = -std::numeric_limits<float>::infinity(), sum = 0.0f;
      for (int64_t j = j0; j < j1; ++j) mx = std::max(mx, s[size_t(j)]);
      for (int64_t c = 0; c < dv; ++c) acc[size_t(b * dv + c)] = 0.0;
      for (int64_t j = j0; j < j1; ++j) {
        const float e = std::exp(s[size_t(j)] - mx);
        sum += e;
        for (int64_t c = 0; c < dv; ++c) acc[size_t(b * dv + c)] += double(r(e)) * double(row(j, c));
      }
      m[size_t(b)] = mx;
      l[size_t(b)] = sum;
    }
    merge_weights(m.data(), 1, blocks, w.data());
    double L = 0.0;
    for (int64_t b = 0; b < blocks; ++b) L += double(w[size_t(b)]) * double(l[size_t(b)]);
    for (int64_t c = 0; c < dv; ++c) {
      double o = 0.0;
      for (int64_t b = 0; b < blocks; ++b) o += double(w[size_t(b)]) * acc[size_t(b * dv + c)];
      out[h * ldo + c] = float(o / L);
    }
  }
}
}  // namespace

void attention_decode(const float* q, int64_t nh, int64_t ldq, const float* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo) {
  decode_ref(q, nh, ldq, rows, n, ldr, W, dv, scale, out, ldo);
}

void attention_decode(const float* q, int64_t nh, int64_t ldq, const uint16_t* rows, int64_t n,
                      int64_t ldr, int64_t W, int64_t dv, float scale, float* out, int64_t ldo) {
  decode_ref(q, nh, ldq, rows, n, ldr, W, dv, scale, out, ldo);
}

}  // namespace ref

}  // namespace seek::kernels
