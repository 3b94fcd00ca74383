#include "model/saved_activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/dtype.h"

namespace seek::model {
namespace {

// Rows with an outlier each, as activations have: a per-tensor scale would flush the small values.
std::vector<float> activations(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(size_t(rows * cols));
  for (float& v : x) v = n(rng) * 0.05f;
  for (int64_t r = 0; r < rows; ++r) x[size_t(r * cols + (r * 37) % cols)] = 30.0f;
  return x;
}

TEST(SavedActivation, Float32IsKeptAsItIs) {
  const std::vector<float> x = activations(5, 200, 1);
  SavedActivation s;
  s.keep(x, 200, false);
  std::vector<float> buf;
  const float* v = s.values(buf);
  EXPECT_TRUE(buf.empty());  // no copy
  EXPECT_EQ(std::vector<float>(v, v + x.size()), x);
  EXPECT_EQ(s.bytes(), x.size() * 4);
  EXPECT_EQ(s.size(), x.size());
}

// FP8: e4m3 codes with one scale per 1×128 tile of a row (the last tile of a 200-wide row has
// 72 values): a byte per value plus a float per tile, each value within e4m3's rounding of its
// tile's scale, exactly the values the FP8 GEMM quantizes the same rows to.
TEST(SavedActivation, Fp8KeepsTilesOfOneRowAndDecodesWithinE4m3Rounding) {
  const int64_t rows = 6, cols = 200;
  const std::vector<float> x = activations(rows, cols, 2);
  SavedActivation s;
  s.keep(x.data(), rows, cols, true);
  EXPECT_EQ(s.size(), size_t(rows * cols));
  EXPECT_EQ(s.bytes(), size_t(rows * cols) + size_t(rows * 2) * sizeof(float));
  std::vector<float> buf;
  const float* v = s.values(buf);
  ASSERT_EQ(buf.size(), size_t(rows * cols));
  kernels::Fp8Operand q;
  kernels::quantize_fp8_operand(x.data(), cols, false, rows, cols, kernels::Fp8Scaling::Tile, q);
  std::vector<float> ref(size_t(rows * cols));
  kernels::dequantize_fp8_operand(q, ref.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k0 = 0; k0 < cols; k0 += 128) {
      const int64_t k1 = std::min(cols, k0 + 128);
      float amax = 0.0f;
      for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[size_t(r * cols + k)]));
      const float S = amax / 448.0f;
      for (int64_t k = k0; k < k1; ++k) {
        const size_t i = size_t(r * cols + k);
        EXPECT_EQ(v[i], ref[i]) << r << "," << k;
        // Normal e4m3: 3 mantissa bits, half an ulp ≤ 2^-4 relative; subnormal: 2^-10 · S.
        EXPECT_LE(std::fabs(v[i] - x[i]), std::max(std::fabs(x[i]) / 16.0f, S / 1024.0f) * 1.0001f) << i;
      }
    }
  // The small values of a row with an outlier survive (its tile's scale, not the tensor's).
  EXPECT_NE(v[1], 0.0f);
  // Kept again as float32: the FP8 codes are dropped.
  s.keep(x, cols, false);
  EXPECT_EQ(s.bytes(), x.size() * 4);
}

}  // namespace
}  // namespace seek::model
