// GGML block formats (kernels/quant.h): the bit layouts pinned with hand-built blocks, the
// reference quantizers' error and their defining properties, WeightView::at (an independent
// element decoder) against dequantize_row, and the shapes they reject.
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/tensor_view.h"

namespace seek::kernels {
namespace {

const DType kTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

void put_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_f16(f);
  std::memcpy(p, &h, 2);
}

// ---- layouts ---------------------------------------------------------------------------------

TEST(QuantLayout, Q8_0BlockIsScaleThenSignedCodes) {
  uint8_t b[34];
  put_f16(b, 0.5f);
  for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(j * 8 - 128));
  float y[32];
  dequantize_row(DType::Q8_0, b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * float(j * 8 - 128)) << j;
}

TEST(QuantLayout, Q4_0LowNibblesAreTheFirstHalf) {
  uint8_t b[18];
  put_f16(b, 2.0f);
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(j | (15 - j) << 4);
  float y[32];
  dequantize_row(DType::Q4_0, b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * float(j - 8)) << j;
    EXPECT_EQ(y[16 + j], 2.0f * float(7 - j)) << j;
  }
}

// block_q4_K: d, dmin, then the 12 scale bytes. Sub-blocks 0..3 keep scale and min in the low six
// bits of bytes 0..3 and 4..7; sub-blocks 4..7 have their low four bits in bytes 8..11 (scale in
// the low nibble, min in the high) and their top two bits in the top bits of bytes 0..3 (scale)
// and 4..7 (min). Then 4 x 32 bytes, each 64 elements: 32 low nibbles, then 32 high nibbles.
TEST(QuantLayout, Q4_KSixBitScalesAndMins) {
  const int sc[8] = {1, 2, 3, 4, 33, 40, 50, 63}, mn[8] = {0, 5, 10, 63, 17, 20, 31, 48};
  uint8_t b[144] = {};
  put_f16(b, 1.0f);
  put_f16(b + 2, 0.5f);
  for (int j = 0; j < 4; ++j) {
    b[4 + j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
    b[8 + j] = uint8_t(mn[j] | (mn[j + 4] >> 4) << 6);
    b[12 + j] = uint8_t((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
  }
  auto code = [](int e) { return (e * 5 + e / 32) % 16; };
  for (int e = 0; e < 256; ++e) {
    uint8_t& byte = b[16 + 32 * (e / 64) + e % 32];
    byte |= uint8_t((e / 32) % 2 ? code(e) << 4 : code(e));
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    q4k_scale_min(b + 4, j, &s, &m);
    EXPECT_EQ(s, sc[j]) << j;
    EXPECT_EQ(m, mn[j]) << j;
  }
  float y[256];
  dequantize_row(DType::Q4_K, b, y, 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], float(sc[e / 32]) * float(code(e)) - 0.5f * float(mn[e / 32])) << e;
}

// block_q6_K: ql[128], qh[64], int8 scales[16], d. Per 128 elements: ql[l] holds the low four bits
// of elements l (low nibble) and l + 64 (high), ql[l + 32] those of l + 32 and l + 96; qh[l] holds
// the top two bits of l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6. Values d · scale · (q - 32).
TEST(QuantLayout, Q6_KSplitCodesAndSignedScales) {
  uint8_t b[210] = {};
  auto code = [](int e) { return (e * 7 + 3) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, i = (e % 128) / 32, l = e % 32, q = code(e);
    b[64 * h + 32 * (i % 2) + l] |= uint8_t(i < 2 ? q & 0xF : (q & 0xF) << 4);
    b[128 + 32 * h + l] |= uint8_t((q >> 4) << (2 * i));
  }
  for (int j = 0; j < 16; ++j) b[192 + j] = uint8_t(int8_t(j * 17 - 128));
  put_f16(b + 208, 0.25f);
  float y[256];
  dequantize_row(DType::Q6_K, b, y, 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.25f * float((e / 16) * 17 - 128) * float(code(e) - 32)) << e;
}

// ---- quantizers ------------------------------------------------------------------------------

double rel_rms_error(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(size_t(dtype_bytes(t, int64_t(x.size()))));
  std::vector<float> y(x.size());
  quantize_row(t, x.data(), q.data(), int64_t(x.size()));
  dequantize_row(t, q.data(), y.data(), int64_t(x.size()));
  double e2 = 0, x2 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e2 += double(y[i] - x[i]) * (y[i] - x[i]);
    x2 += double(x[i]) * x[i];
  }
  return std::sqrt(e2 / x2);
}

// Gaussian rows: the error each format is known for (8 bits ~0.5%, 6 bits ~2%, 4 bits ~10%;
// Q4_K's per-32 scales and mins beat Q4_0's one scale).
TEST(Quantize, RoundTripErrorPerType) {
  const std::vector<float> x = gaussian(1 << 14, 1, 0.02f);
  const double q8 = rel_rms_error(DType::Q8_0, x), q4 = rel_rms_error(DType::Q4_0, x);
  const double q4k = rel_rms_error(DType::Q4_K, x), q6k = rel_rms_error(DType::Q6_K, x);
  EXPECT_LT(q8, 0.01);
  EXPECT_LT(q6k, 0.03);
  EXPECT_LT(q4k, 0.10);
  EXPECT_LT(q4, 0.14);
  EXPECT_LT(q4k, q4);
  EXPECT_LT(q8, q6k);
  EXPECT_LT(q6k, q4k);
}

// Q8_0: d = max|x| / 127 stored as f16, codes round-half-away(x / d).
TEST(Quantize, Q8_0IsMaxScaledRounding) {
  const std::vector<float> x = gaussian(64, 2);
  uint8_t b[68];
  quantize_row(DType::Q8_0, x.data(), b, 64);
  for (int blk = 0; blk < 2; ++blk) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * blk + j]));
    const float d = amax / 127;
    uint16_t h;
    std::memcpy(&h, b + 34 * blk, 2);
    EXPECT_EQ(h, f32_to_f16(d));
    for (int j = 0; j < 32; ++j)
      EXPECT_EQ(int8_t(b[34 * blk + 2 + j]), int(std::round(x[32 * blk + j] * (1.0f / d))));
  }
}

// Q4_0: the element of largest magnitude lands on code 0 (-8 · d), so d has the opposite sign.
TEST(Quantize, Q4_0LargestMagnitudeIsCodeZero) {
  std::vector<float> x = gaussian(32, 3);
  x[11] = 5.0f;
  uint8_t b[18];
  quantize_row(DType::Q4_0, x.data(), b, 32);
  uint16_t h;
  std::memcpy(&h, b, 2);
  EXPECT_EQ(h, f32_to_f16(5.0f / -8));
  EXPECT_EQ(b[2 + 11] & 0xF, 0);
}

// All-zero input: zero blocks (Q6_K's is all zero bytes, as llama.cpp writes it).
TEST(Quantize, ZerosStayZero) {
  const std::vector<float> x(256, 0.0f);
  for (DType t : kTypes) {
    std::vector<uint8_t> q(size_t(dtype_bytes(t, 256)), 0xAB);
    std::vector<float> y(256, 1.0f);
    quantize_row(t, x.data(), q.data(), 256);
    dequantize_row(t, q.data(), y.data(), 256);
    for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
    if (t == DType::Q6_K) {
      for (uint8_t c : q) ASSERT_EQ(c, 0);
    }
  }
}

// Q4_K and Q6_K fit sub-block scales: in a row whose sub-blocks alternate between two sizes 4x
// apart, the small ones keep about the relative error of the large (one scale per superblock
// would make it 4x larger). (Much larger ratios are beyond the 6-bit / int8 sub-block scales.)
TEST(Quantize, KTypesFitEachSubBlock) {
  std::vector<float> x = gaussian(512, 4);
  for (size_t i = 0; i < x.size(); ++i) x[i] *= (i / 32) % 2 ? 0.25f : 1.0f;
  for (DType t : {DType::Q4_K, DType::Q6_K}) {
    std::vector<uint8_t> q(size_t(dtype_bytes(t, 512)));
    std::vector<float> y(512);
    quantize_row(t, x.data(), q.data(), 512);
    dequantize_row(t, q.data(), y.data(), 512);
    for (int s = 1; s < 16; s += 2) {  // the small sub-blocks, on their own
      double e2 = 0, x2 = 0;
      for (int l = 0; l < 32; ++l) {
        const size_t i = size_t(32 * s + l);
        e2 += double(y[i] - x[i]) * (y[i] - x[i]);
        x2 += double(x[i]) * x[i];
      }
      EXPECT_LT(std::sqrt(e2 / x2), t == DType::Q6_K ? 0.035 : 0.12) << dtype_name(t) << " " << s;
    }
  }
}

TEST(Quantize, RejectsPartialBlocksAndOtherDtypes) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), q.data(), 255), Error);
  EXPECT_THROW(dequantize_row(DType::Q6_K, q.data(), x.data(), 300), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_0, q.data(), x.data(), 31), Error);
  EXPECT_THROW(quantize_row(DType::BF16, x.data(), q.data(), 32), Error);
  EXPECT_NO_THROW(quantize_row(DType::Q4_0, x.data(), q.data(), 0));
}

// ---- WeightView::at --------------------------------------------------------------------------

// at() decodes one element by itself (core/tensor_view.cpp); it must give dequantize_row's value
// bit for bit, on a view sliced out of a larger tensor (rows and whole-block columns) whose
// storage starts at an odd address.
TEST(WeightViewAt, BlockTypesMatchDequantizeRow) {
  for (DType t : kTypes) {
    const int64_t blk = dtype_block(t), rows = 6, ld = 3 * blk;
    const std::vector<float> x = gaussian(rows * ld, 5);
    std::vector<uint8_t> storage(size_t(dtype_bytes(t, rows * ld) + 1));
    uint8_t* data = storage.data() + 1;
    quantize_row(t, x.data(), data, rows * ld);
    WeightView full{t, rows, ld, ld, data};
    const WeightView v = full.slice_rows(2, 3).slice_cols(blk, 2 * blk);
    std::vector<float> row(static_cast<size_t>(ld));
    for (int64_t i = 0; i < v.rows; ++i) {
      dequantize_row(t, data + dtype_bytes(t, (i + 2) * ld), row.data(), ld);
      for (int64_t j = 0; j < v.cols; ++j)
        ASSERT_EQ(v.at(i, j), row[size_t(blk + j)]) << dtype_name(t) << " " << i << "," << j;
    }
  }
}

// ---- activations -----------------------------------------------------------------------------

TEST(QuantizeActs, BlockScalesCodesAndSums) {
  const int64_t K = 512;
  const std::vector<float> x = gaussian(2 * K, 6);
  for (DType t : kTypes) {
    QuantizedActs a;
    quantize_acts(t, x.data(), 2, K, K, a);
    const int64_t blk = act_block(t);
    EXPECT_EQ(blk, dtype_block(t) == 32 ? 32 : 256);
    for (int64_t m = 0; m < 2; ++m)
      for (int64_t k = 0; k < K; ++k) {
        const float d = a.d_row(m)[k / blk];
        ASSERT_LE(std::fabs(d * a.q_row(m)[k] - x[size_t(m * K + k)]), d / 2 * 1.0001f);
        if (k % 16 == 0) {
          int s = 0;
          for (int i = 0; i < 16; ++i) s += a.q_row(m)[k + i];
          ASSERT_EQ(a.sum16_row(m)[k / 16], s);
        }
      }
  }
  QuantizedActs a;
  EXPECT_THROW(quantize_acts(DType::Q4_K, x.data(), 1, K, 128, a), Error);
}

}  // namespace
}  // namespace seek::kernels
