// The cache-blocked driver shared by the SIMD training GEMMs (BLIS structure). B is packed into
// panels of NR columns shared by all threads; each thread packs its own panels of MR rows of A
// and runs the tier's register-tile micro-kernel over them. A tier supplies a struct with its
// block sizes, its panel element type and three functions (static, or members of a tier object
// that carries state, as the FP8 tier's quantized operands):
//   struct Tier {
//     using Elem = float;                              // panel element (uint32_t: bf16 pairs)
//     static constexpr int64_t MR, NR, KC, NC, MC_MAX;
//     static int64_t depth(int64_t kc);                // panel rows per kc values of K
//     static void pack_a(Trans, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
//                        int64_t kc, Elem* dst);       // op(A) block -> a panel of MR rows
//     static void pack_b(Trans, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
//                        int64_t nr, Elem* dst);       // op(B) block -> a panel of NR columns
//     static void micro_kernel(int64_t kc, const Elem* a, const Elem* b, float* c, int64_t ldc,
//                              int64_t mr, int64_t nr, bool overwrite);  // C[mr,nr] (+)= a·b
//   };
// Float32 tiers derive from F32Panels (fp32 panels [kc][MR] and [kc][NR]) and RoundedToBf16<T>
// turns one into Precision::BF16 by rounding its packed panels.
// Everything here has internal linkage: each *_avx2.cpp / *_avx512.cpp compiles its own copy with
// its own ISA flags, so the linker can never hand the AVX-512 build of a function to an AVX2 CPU.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/gemm_train.h"

namespace seek::kernels {
namespace {

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Rows row0 + r (r < rows) of a row-major matrix S, its columns k0 .. k0 + kc - 1, into
// dst[k][W]: each row becomes a column of the panel, columns past `rows` zero. This packs op(A)
// for A stored [M, K] and op(B) for B stored [N, K] (Trans::Yes).
template <int64_t W>
void pack_rows_as_columns(const float* S, int64_t ld, int64_t row0, int64_t rows, int64_t k0,
                          int64_t kc, float* dst) {
  for (int64_t r = 0; r < W; ++r) {
    if (r < rows) {
      const float* s = S + (row0 + r) * ld + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * W + r] = s[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) dst[k * W + r] = 0.0f;
    }
  }
}

// op(A)[i0 + r, k0 + k] for r < mr, k < kc into dst[k][MR], rows past mr zero.
template <int64_t MR>
void pack_a(Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
            int64_t kc, float* dst) {
  if (ta == Trans::No) return pack_rows_as_columns<MR>(A, lda, i0, mr, k0, kc, dst);
  // A stored [K, M]: a panel row is contiguous. Full panels copy MR floats of a fixed count (a
  // couple of vector moves); the run-time count of the loop below compiles, for AVX-512, to a
  // 16-wide loop that MR = 12 never enters plus a scalar tail, ~4% slower weight-gradient GEMMs.
  if (mr == MR) {
    for (int64_t k = 0; k < kc; ++k)
      std::memcpy(dst + k * MR, A + (k0 + k) * lda + i0, MR * sizeof(float));
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = A + (k0 + k) * lda + i0;
    float* d = dst + k * MR;
    int64_t r = 0;
    for (; r < mr; ++r) d[r] = s[r];
    for (; r < MR; ++r) d[r] = 0.0f;
  }
}

// 64-byte aligned scratch of n 4-byte elements (aligned panel loads in the micro-kernels).
template <class E>
E* aligned(std::vector<E>& v, size_t n) {
  static_assert(sizeof(E) == 4);
  v.resize(n + 16);
  auto p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<E*>((p + 63) & ~uintptr_t(63));
}

// Panels of float32: A as [kc][MR], B as [kc][NR] (the tier adds pack_b and its micro-kernel).
template <int64_t MR_>
struct F32Panels {
  using Elem = float;
  static int64_t depth(int64_t kc) { return kc; }
  static void pack_a(Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
                     int64_t kc, float* dst) {
    kernels::pack_a<MR_>(ta, A, lda, i0, mr, k0, kc, dst);
  }
};

// A float32 tier under Precision::BF16: its packed panels rounded to bf16 (RNE, as f32_to_bf16)
// and multiplied by its fp32 kernel, exactly, since a product of two bf16 values fits in fp32.
template <class T>
struct RoundedToBf16 : T {
  static void round(float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) p[i] = bf16_to_f32(f32_to_bf16(p[i]));
  }
  static void pack_a(Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t k0,
                     int64_t kc, float* dst) {
    T::pack_a(ta, A, lda, i0, mr, k0, kc, dst);
    round(dst, kc * T::MR);
  }
  static void pack_b(Trans tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                     int64_t nr, float* dst) {
    T::pack_b(tb, B, ldb, k0, kc, j0, nr, dst);
    round(dst, kc * T::NR);
  }
};

template <class Tier>
void gemm_blocked(const Tier& tier, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                  bool accumulate) {
  using Elem = typename Tier::Elem;
  constexpr int64_t MR = Tier::MR, NR = Tier::NR, KC = Tier::KC, NC = Tier::NC;
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Enough A blocks for every thread when M is small; MR-aligned.
  const int64_t MC = std::clamp(round_up((M + nt - 1) / nt, MR), MR, Tier::MC_MAX);
  const int64_t n_ic = (M + MC - 1) / MC;
  const int64_t n_split = n_ic >= nt ? 1 : nt;
  thread_local std::vector<Elem> bbuf;
  const int64_t nc_max = std::min(NC, round_up(N, NR));
  Elem* bp = aligned(bbuf, size_t(Tier::depth(KC) * nc_max));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), n_jr = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc), kd = Tier::depth(kc);
      const bool overwrite = !accumulate && pc == 0;
#pragma omp parallel num_threads(nt)
      {
#pragma omp for schedule(static)
        for (int64_t jr = 0; jr < n_jr; ++jr)
          tier.pack_b(tb, B, ldb, pc, kc, jc + jr * NR, std::min(NR, nc - jr * NR),
                       bp + jr * kd * NR);
        thread_local std::vector<Elem> abuf;
        Elem* ap = aligned(abuf, size_t(MC * Tier::depth(KC)));
        // Tasks are (A block, slice of B panels): when M is too small to give every thread an
        // A block, the B panels are split instead and each thread packs the (small) A block itself.
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_ic * n_split; ++task) {
          const int64_t ic = task / n_split, part = task % n_split;
          const int64_t i0 = ic * MC, mc = std::min(MC, M - i0);
          const int64_t jr0 = n_jr * part / n_split, jr1 = n_jr * (part + 1) / n_split;
          if (jr0 == jr1) continue;
          for (int64_t ir = 0; ir < mc; ir += MR)
            tier.pack_a(ta, A, lda, i0 + ir, std::min(MR, mc - ir), pc, kc, ap + ir * kd);
          for (int64_t jr = jr0; jr < jr1; ++jr)
            for (int64_t ir = 0; ir < mc; ir += MR)
              tier.micro_kernel(kc, ap + ir * kd, bp + jr * kd * NR,
                                 C + (i0 + ir) * ldc + jc + jr * NR, ldc, std::min(MR, mc - ir),
                                 std::min(NR, nc - jr * NR), overwrite);
        }
      }
    }
  }
}

}  // namespace
}  // namespace seek::kernels
