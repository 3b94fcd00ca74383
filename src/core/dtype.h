// Storage dtypes of checkpoint tensors and the scalar conversions every kernel is checked against.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace seek {

// Q8_0, Q4_0, Q4_K and Q6_K are GGML's block-quantized types, byte for byte as llama.cpp stores
// them in GGUF files: a row of a matrix is a run of blocks of dtype_block() elements, each
// dtype_block_bytes() bytes (block_q8_0: f16 d, 32 x int8; block_q4_0: f16 d, 16 bytes of
// nibbles; block_q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles;
// block_q6_K: 128 bytes low nibbles, 64 bytes high 2 bits, 16 x int8 scales, f16 d). A view of
// such a matrix starts and ends rows and column slices on block boundaries.
enum class DType : uint8_t { F32, BF16, F16, F8_E4M3, I32, I64, Q8_0, Q4_0, Q4_K, Q6_K };

// Elements per block: 1 for the scalar types, 32 (Q8_0, Q4_0) or 256 (Q4_K, Q6_K).
inline int64_t dtype_block(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: return 32;
    case DType::Q4_K: case DType::Q6_K: return 256;
    default: return 1;
  }
}

inline bool dtype_is_blocked(DType t) { return dtype_block(t) > 1; }

// Bytes per block (for the scalar types: per element).
inline size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::F8_E4M3: return 1;
    case DType::I64: return 8;
    case DType::Q8_0: return 34;
    case DType::Q4_0: return 18;
    case DType::Q4_K: return 144;
    case DType::Q6_K: return 210;
  }
  return 0;
}

// Bytes of n consecutive elements (n a multiple of dtype_block(t)).
inline int64_t dtype_bytes(DType t, int64_t n) {
  return n / dtype_block(t) * int64_t(dtype_block_bytes(t));
}


// Bytes per element of the scalar types; 0 for the block types (use dtype_bytes()).
inline size_t dtype_size(DType t) { return dtype_is_blocked(t) ? 0 : dtype_block_bytes(t); }

inline std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q6_K: return "Q6_K";
  }
  return "?";
}

// Safetensors dtype string -> DType; false if unknown.
inline bool parse_dtype(std::string_view s, DType* out) {
  static constexpr std::pair<std::string_view, DType> table[] = {
      {"F32", DType::F32}, {"BF16", DType::BF16}, {"F16", DType::F16},
      {"F8_E4M3", DType::F8_E4M3}, {"I32", DType::I32}, {"I64", DType::I64}};
  for (auto& [name, t] : table)
    if (s == name) { *out = t; return true; }
  return false;
}

// BF16 is the upper half of a binary32.
inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// Round to nearest even, NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// IEEE binary16 -> binary32 (exact, incl. subnormals, inf, NaN).
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    float v = std::ldexp(float(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

// binary32 -> binary16, round to nearest even; overflow to inf, NaN stays NaN (quiet).
uint16_t f32_to_f16(float f);

// float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; exponent 0 is subnormal (m/8 * 2^-6);
// no infinities, 0x7f / 0xff are NaN; largest finite 448.
inline float fp8_e4m3_to_f32(uint8_t q) {
  uint32_t sign = q >> 7, exp = (q >> 3) & 0xf, man = q & 7;
  float v;
  if (exp == 0xf && man == 7) v = NAN;
  else if (exp == 0) v = std::ldexp(float(man) / 8.0f, -6);
  else v = std::ldexp(1.0f + float(man) / 8.0f, int(exp) - 7);
  return sign ? -v : v;
}

// Round-to-nearest-even float -> e4m3 with saturation to ±448 (the quantizer of the V3 release).
uint8_t f32_to_fp8_e4m3(float f);

}  // namespace seek
