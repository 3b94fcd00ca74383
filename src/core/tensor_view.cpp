#include "core/tensor_view.h"

#include <cstring>

namespace seek {
namespace {

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Element e (0 <= e < dtype_block(t)) of the block at b, decoded on its own: an independent
// reading of the GGML layouts (core/dtype.h) that kernels/quant.cpp's row decoders are tested
// against. The float operations are those of llama.cpp's dequantize_row_*, so values agree bit
// for bit.
float block_element(DType t, const uint8_t* b, int64_t e) {
  switch (t) {
    case DType::Q8_0: return float(int8_t(b[2 + e])) * load_f16(b);
    case DType::Q4_0: {
      const int n = e < 16 ? b[2 + e] & 0xF : b[2 + e - 16] >> 4;
      return float(n - 8) * load_f16(b);
    }
    case DType::Q4_K: {  // 64 elements per 32 bytes: low nibbles first, then high
      const int j = int(e / 32), l = int(e % 32);
      const uint8_t byte = b[16 + 32 * (j / 2) + l];
      const int n = j % 2 ? byte >> 4 : byte & 0xF;
      const uint8_t* s = b + 4;
      const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
      const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
      return load_f16(b) * float(sc) * float(n) - load_f16(b + 2) * float(m);
    }
    case DType::Q6_K: {  // per 128: ql bytes l / l+32 (low, high nibble), 2 bits each in qh[l]
      const int h = int(e / 128), r = int(e % 128), i = r / 32, l = r % 32;
      const uint8_t lo = b[64 * h + l + 32 * (i % 2)];
      const int low4 = i < 2 ? lo & 0xF : lo >> 4;
      const int high2 = (b[128 + 32 * h + l] >> (2 * i)) & 3;
      return load_f16(b + 208) * float(int8_t(b[192 + e / 16])) * float((low4 | high2 << 4) - 32);
    }
    default: return 0.0f;
  }
}

}  // namespace

WeightView WeightView::slice_rows(int64_t r0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + r0 * dtype_bytes(dtype, ld);
  v.rows = n;
  v.row0 = row0 + r0;
  return v;
}

WeightView WeightView::slice_cols(int64_t c0, int64_t n) const {
  WeightView v = *this;
  v.data = static_cast<const uint8_t*>(data) + dtype_bytes(dtype, c0);
  v.cols = n;
  v.col0 = col0 + c0;
  return v;
}

float WeightView::at(int64_t i, int64_t j) const {
  if (dtype_is_blocked(dtype)) {
    const int64_t blk = dtype_block(dtype);
    const uint8_t* b = static_cast<const uint8_t*>(data) + dtype_bytes(dtype, i * ld) +
                       j / blk * int64_t(dtype_block_bytes(dtype));
    return block_element(dtype, b, j % blk);
  }
  const int64_t idx = i * ld + j;
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[idx];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[idx]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[idx]);
    case DType::F8_E4M3:
      return fp8_e4m3_to_f32(static_cast<const uint8_t*>(data)[idx]) *
             scale_inv[((row0 + i) / 128) * scale_ld + (col0 + j) / 128];
    default: return 0.0f;
  }
}

}  // namespace seek
