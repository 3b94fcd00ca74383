// Private to the matmul kernels: the per-ISA entry points matmul.cpp dispatches to, and the
// small pieces of policy and bookkeeping they share (threading thresholds, FP8 scale lookup,
// scratch buffers). Nothing here is ISA-specific, so every variant may include it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/threads.h"
#include "kernels/gemm_train.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

// Register-blocked kernels keep their accumulators in small arrays (acc[MR][2], ...). GCC only
// turns those into registers if the loops over them are unrolled before its scalar-replacement
// pass; left to itself it sometimes keeps a copy on the stack and stores every accumulator on every
// iteration (measured: matmul_t at 1/3 speed). Every loop over a register array says so.
#define SEEK_UNROLL _Pragma("GCC unroll 16")

namespace seek::kernels {

// Each ISA variant implements the full public contract of matmul / matmul_t (threading included),
// and matmul_quant: y = x · Wᵀ for block-quantized W, with x already quantized (quant.h).
// `portable` is plain C++ the compiler vectorizes for the x86-64-v2 baseline.
#define SEEK_MATMUL_VARIANT(ns)                                                                 \
  namespace ns {                                                                                \
  void matmul(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,          \
              int64_t ldy, Precision p);                                                        \
  void matmul_t(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,        \
                int64_t ldy);                                                                   \
  void matmul_quant(const QuantizedActs& x, const WeightView& w, float* y, int64_t ldy);       \
  }
SEEK_MATMUL_VARIANT(portable)
SEEK_MATMUL_VARIANT(avx2)
SEEK_MATMUL_VARIANT(avx512)
#undef SEEK_MATMUL_VARIANT

namespace avx512 {
// Large-M path (prefill): packed panels + register-blocked micro-kernels (matmul_gemm_avx512.cpp).
void gemm(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
          Precision p);
// The same for block-quantized W with x quantized (matmul_quant_gemm_avx512.cpp, VNNI).
void gemm_quant(const QuantizedActs& x, const WeightView& w, float* y, int64_t ldy);
}

// Up to this many activation rows a product streams the weights once, row-blocked (GEMV);
// above it, weights are packed into panels and reused from cache by a GEMM micro-kernel.
inline constexpr int64_t kGemvMaxRows = 8;
// Up to this many rows every row's result is the one it gets alone (M = 1), bit for bit: a
// speculative verification (8 drafts and the token before them, model/mla.cpp) must round every
// product as the decode steps would. The GEMV kernels sum each row in chains fixed per row, and
// 9 rows go as two GEMV passes rather than the GEMM.
inline constexpr int64_t kExactRows = 9;
// The same for block-quantized weights on AVX-512 (above it: avx512::gemm_quant). Measured with
// bench_quant's small batches: the GEMM's repacking pays for itself from ~9 rows, but Q6_K's
// (two scale transposes per superblock, twice the scale multiplies) only from ~24.
inline int64_t quant_gemv_max_rows(DType t) { return t == DType::Q6_K ? 24 : 8; }

// Threads worth using for `macs` multiply-adds touching `weight_bytes` of weights. An OpenMP
// fork/join costs a few microseconds, which is what streaming ~100 KB of weights costs, so small
// products (a per-head kv_b_proj slice, tiny test matrices) stay on the calling thread.
inline int threads_for(int64_t macs, int64_t weight_bytes) {
  if (weight_bytes < (256 << 10) && macs < (1 << 20)) return 1;
  return max_threads();
}

// FP8 block scale of absolute element (r, c) of the full tensor: scale_inv[r/128, c/128].
inline float fp8_scale(const WeightView& w, int64_t abs_row, int64_t abs_col) {
  return w.scale_inv[(abs_row / 128) * w.scale_ld + abs_col / 128];
}

// Round-to-nearest-even to bf16 and back: the activation rounding of Precision::BF16.
inline float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// A growable 64-byte-aligned scratch buffer; thread_local instances give each OpenMP worker its
// own packing space without an allocation per call.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(p_); }
  template <class T>
  T* get(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    if (bytes > cap_) {
      std::free(p_);
      p_ = std::aligned_alloc(64, bytes);
      if (!p_) throw std::bad_alloc();
      cap_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

// Precision::BF16's activations for the kernels that read them many times (the GEMMs): x [M, K]
// with row stride ldx, rounded once into `scratch`; x and ldx then point at the copy (stride K).
// Defined in matmul.cpp, for the baseline ISA, as an out-of-line function: an inline loop
// compiled into several variants' files could be merged by the linker into one that needs an
// ISA the machine lacks. It is O(M·K) against the product's O(M·N·K).
void round_bf16_rows(const float*& x, int64_t& ldx, int64_t M, int64_t K, Scratch& scratch);

// Precision::FP8 (training): y = x · Wᵀ through `product` (gemm, or ref::gemm for ref::matmul)
// in FP8 with W as the weight operand; W must be F32.
void matmul_fp8(const float* x, int64_t M, int64_t ldx, const WeightView& w, float* y,
                int64_t ldy, decltype(&gemm) product);

}  // namespace seek::kernels
