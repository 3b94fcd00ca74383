// FP8 quantization (kernels/fp8.h): the release's block quantizer (codes against the reference
// rounding, scales, error bound) and the FP8 GEMM's operands (tile and block scaling).
#include "kernels/fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace seek::kernels {
namespace {

// Every value exactly representable in e4m3, every midpoint between neighbours (ties) and points
// just off them, in one 128×128 block with amax 448 (so S = 1 and codes are plain e4m3(w)).
TEST(Fp8, QuantizerMatchesTheReferenceRounding) {
  std::vector<float> vals;
  for (int c = 0; c < 0x7e; ++c) {
    float a = fp8_e4m3_to_f32(uint8_t(c)), b = fp8_e4m3_to_f32(uint8_t(c + 1));
    float mid = 0.5f * (a + b);
    for (float v : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      vals.push_back(v);
      vals.push_back(-v);
    }
  }
  vals.push_back(448.0f);
  vals.push_back(1e-12f);
  vals.push_back(-0.0f);
  std::vector<float> w(128 * 128, 0.0f);
  ASSERT_LE(vals.size(), w.size());
  std::copy(vals.begin(), vals.end(), w.begin());
  std::vector<uint8_t> q(w.size());
  float s = 0;
  quantize_fp8_blocks(w.data(), 128, 128, q.data(), &s);
  ASSERT_EQ(s, 1.0f);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(q[i], f32_to_fp8_e4m3(w[i])) << w[i];
}

// Partial edge blocks in both directions, block magnitudes spanning 2^-20..2^20: codes are
// e4m3(w / S) with S = amax/448 of each block, and the error is at most half an e4m3 ulp of the
// value (1/16 relative), or of the smallest subnormal (S·2^-10).
TEST(Fp8, BlockScalesAndErrorBound) {
  const int64_t rows = 300, cols = 260;  // 3 × 3 blocks: the last 44 rows, the last 4 columns
  const int64_t ncb = 3;
  std::mt19937 rng(5);
  std::normal_distribution<float> n01;
  std::vector<float> w(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      int64_t blk = (r / 128) * ncb + c / 128;
      w[size_t(r * cols + c)] = n01(rng) * std::ldexp(1.0f, int(blk * 5) - 20);
    }
  for (int64_t c = 128; c < 256; ++c)  // block (0, 1) all zero
    for (int64_t r = 0; r < 128; ++r) w[size_t(r * cols + c)] = 0.0f;
  std::vector<uint8_t> q(w.size());
  std::vector<float> s(9);
  quantize_fp8_blocks(w.data(), rows, cols, q.data(), s.data());
  EXPECT_EQ(s[1], 1.0f);  // all-zero block
  for (int64_t rb = 0; rb < 3; ++rb)
    for (int64_t cb = 0; cb < ncb; ++cb) {
      float amax = 0;
      for (int64_t r = rb * 128; r < std::min(rows, rb * 128 + 128); ++r)
        for (int64_t c = cb * 128; c < std::min(cols, cb * 128 + 128); ++c)
          amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
      if (amax > 0) {
        EXPECT_EQ(s[size_t(rb * ncb + cb)], amax / 448.0f) << rb << "," << cb;
      }
    }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = size_t(r * cols + c);
      const float S = s[size_t((r / 128) * ncb + c / 128)];
      ASSERT_EQ(q[i], f32_to_fp8_e4m3(w[i] / S)) << r << "," << c;
      const float deq = fp8_e4m3_to_f32(q[i]) * S;
      ASSERT_LE(std::fabs(deq - w[i]), std::max(std::fabs(w[i]) / 16.0f, S * 0x1p-10f) * 1.0001f)
          << r << "," << c;
    }
}

// The GEMM's operands: tile scaling gives every row its own scale per 128 K values (amax/448 of
// that tile), block scaling one per 128 rows × 128 K; the transposed source gives the same
// operand; block scaling is exactly the release's quantizer on the same matrix.
TEST(Fp8, OperandTileAndBlockScaling) {
  const int64_t rows = 200, K = 300;  // partial row group and K block
  std::mt19937 rng(3);
  std::normal_distribution<float> n01;
  std::vector<float> x(size_t(rows * K)), xt(size_t(K * rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const float v = n01(rng) * std::ldexp(1.0f, int(r % 7) - 3);  // rows of different scale
      x[size_t(r * K + k)] = v;
      xt[size_t(k * rows + r)] = v;
    }
  Fp8Operand tile, tile_t, block;
  quantize_fp8_operand(x.data(), K, false, rows, K, Fp8Scaling::Tile, tile);
  quantize_fp8_operand(xt.data(), rows, true, rows, K, Fp8Scaling::Tile, tile_t);
  quantize_fp8_operand(x.data(), K, false, rows, K, Fp8Scaling::Block, block);
  ASSERT_EQ(tile.kblocks, 3);
  EXPECT_EQ(tile.codes, tile_t.codes);
  EXPECT_EQ(tile.scale, tile_t.scale);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t kb = 0; kb < 3; ++kb) {
      float amax = 0;
      for (int64_t k = kb * 128; k < std::min<int64_t>(K, kb * 128 + 128); ++k)
        amax = std::max(amax, std::fabs(x[size_t(r * K + k)]));
      ASSERT_EQ(tile.scale_at(r, kb * 128), amax / 448.0f) << r << "," << kb;
      for (int64_t k = kb * 128; k < std::min<int64_t>(K, kb * 128 + 128); ++k)
        ASSERT_EQ(tile.codes[size_t(r * K + k)], f32_to_fp8_e4m3(x[size_t(r * K + k)] / (amax / 448.0f)));
    }
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(2 * 3);
  quantize_fp8_blocks(x.data(), rows, K, q.data(), s.data());
  EXPECT_EQ(block.codes, q);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t kb = 0; kb < 3; ++kb)
      ASSERT_EQ(block.scale_at(r, kb * 128), s[size_t((r / 128) * 3 + kb)]);
  // Dequantized: within half an e4m3 ulp (1/16 relative) or the subnormal step (S·2^-10).
  std::vector<float> d(x.size());
  dequantize_fp8_operand(tile, d.data());
  for (int64_t i = 0; i < rows * K; ++i) {
    const float S = tile.scale_at(i / K, i % K);
    ASSERT_LE(std::fabs(d[size_t(i)] - x[size_t(i)]),
              std::max(std::fabs(x[size_t(i)]) / 16.0f, S * 0x1p-10f) * 1.0001f);
  }
}

}  // namespace
}  // namespace seek::kernels
