// FP8 (float8_e4m3fn, largest finite 448) quantization with DeepSeek-V3's fine-grained scaling:
// one fp32 scale S = amax/448 per 128×128 block of a weight, or per 1×128 tile (one row, 128
// consecutive K values) of an activation, and codes q = e4m3(x / S) rounded to nearest even, so
// that x ≈ e4m3_value(q) · S. The release's weight quantizer (its checkpoints' weight_scale_inv
// is this S), and the operands of the FP8 training GEMM (kernels/gemm_train.h, Precision::FP8).
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace seek::kernels {

inline constexpr int64_t kFp8Block = 128;

// Float -> e4m3 code, round to nearest even, saturating at ±448: the same codes as
// seek::f32_to_fp8_e4m3 (pinned by a test) without its search over all 127 magnitudes, and
// branch-free so the block loops vectorize (3× faster than the scalar form).
inline uint8_t e4m3_rne(float x) {
  // Integer compares and selects only: under the default -ftrapping-math GCC will not
  // if-convert float compares, and the loop would stay scalar. |x| as bits, clamped to 448:
  // non-negative floats order like their bit patterns.
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t b = std::min(u & 0x7fffffffu, 0x43e00000u /* 448 */);
  // Normal (|x| >= 2^-6): round the 23-bit mantissa to 3 bits, ties to even; the top bits are
  // then exponent << 3 | mantissa, and rebiasing the exponent 127 → 7 subtracts 120 << 3.
  const uint32_t normal = ((b + 0x7ffffu + ((b >> 20) & 1u)) >> 20) - (120u << 3);
  // Subnormal: m · 2^-9, m = rne(|x| · 512) in 0..8 (8 is the smallest normal, code 8). Adding
  // 2^23 rounds |x| · 512 < 8 to an integer (default rounding: ties to even) in the low bits.
  const uint32_t sub =
      std::bit_cast<uint32_t>(std::bit_cast<float>(b) * 512.0f + 8388608.0f) - 0x4b000000u;
  const uint32_t is_sub = 0u - uint32_t(b < 0x3c800000u /* 2^-6 */);
  return uint8_t(sign | (sub & is_sub) | (normal & ~is_sub));
}

// The V3 release's weight quantizer: per 128×128 block (edge blocks smaller),
// S = amax(|w|) / 448, q = e4m3(w / S) rounded to nearest even; w ≈ e4m3_value(q) · S.
// codes [rows, cols]; scale_inv [ceil(rows/128), ceil(cols/128)] (an all-zero block gets S = 1).
void quantize_fp8_blocks(const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                         float* scale_inv);

// An operand of the FP8 GEMM seen as `rows` rows of K values (op(A) as it is; op(B) by its
// columns), quantized per 128-wide block of K: codes [rows][K] and a scale per (row, K block).
// Tile scaling (activations and gradients, 1×128) gives each row its own scale; block scaling
// (weights, 128×128) gives the 128 rows of a block the same one.
enum class Fp8Scaling : uint8_t { Tile, Block };
struct Fp8Operand {
  int64_t rows = 0, K = 0, kblocks = 0;
  std::vector<uint8_t> codes;  // [rows][K]
  std::vector<float> scale;    // [rows][kblocks]
  float scale_at(int64_t r, int64_t k) const { return scale[size_t(r * kblocks + k / kFp8Block)]; }
};
// X[r, k] = transposed ? src[k * ld + r] : src[r * ld + k], for r < rows, k < K.
void quantize_fp8_operand(const float* src, int64_t ld, bool transposed, int64_t rows, int64_t K,
                          Fp8Scaling scaling, Fp8Operand& out);
// The dequantized values e4m3_value(q) · S (rounded to fp32), [rows][K].
void dequantize_fp8_operand(const Fp8Operand& x, float* dst);

}  // namespace seek::kernels
