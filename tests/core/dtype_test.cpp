// The scalar conversions every kernel is checked against, checked in turn against the format
// definitions (exhaustively where the format is small enough).
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace seek {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// e4m3fn straight from its definition, in double.
double e4m3_value(uint8_t q) {
  int s = q >> 7, e = (q >> 3) & 15, m = q & 7;
  double v = e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
  return s ? -v : v;
}

TEST(Fp8E4M3, AllCodesMatchTheDefinition) {
  for (int q = 0; q < 256; ++q) {
    float v = fp8_e4m3_to_f32(uint8_t(q));
    if ((q & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << q;
      continue;
    }
    EXPECT_EQ(double(v), e4m3_value(uint8_t(q))) << q;
    EXPECT_EQ(std::signbit(v), q >= 0x80) << q;  // incl. -0 (0x80)
  }
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0xfe), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), 0x1p-9f);  // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), 0x1p-6f);  // smallest normal
}

TEST(Fp8E4M3, RoundTripsEveryFiniteCode) {
  for (int q = 0; q < 256; ++q) {
    if ((q & 0x7f) == 0x7f) continue;
    EXPECT_EQ(f32_to_fp8_e4m3(fp8_e4m3_to_f32(uint8_t(q))), q) << q;
  }
}

TEST(Fp8E4M3, RoundsToNearestEven) {
  // Between each pair of neighbouring positive codes: the midpoint goes to the even code, a hair
  // either side to the nearer one. Midpoints are exact in float (2 more bits than e4m3 needed).
  for (int c = 0; c < 0x7e; ++c) {
    float lo = fp8_e4m3_to_f32(uint8_t(c)), hi = fp8_e4m3_to_f32(uint8_t(c + 1));
    float mid = (lo + hi) / 2;
    ASSERT_EQ(double(mid), (double(lo) + double(hi)) / 2);
    uint8_t even = (c % 2 == 0) ? uint8_t(c) : uint8_t(c + 1);
    EXPECT_EQ(f32_to_fp8_e4m3(mid), even) << c;
    EXPECT_EQ(f32_to_fp8_e4m3(-mid), 0x80 | even) << c;
    EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, 0.0f)), c) << c;
    EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, 1e9f)), c + 1) << c;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(0x1p-10f), 0x00);  // half the smallest subnormal: tie to 0
  EXPECT_EQ(f32_to_fp8_e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(-1e-30f), 0x80);
}

TEST(Fp8E4M3, SaturatesAndKeepsNaN) {
  // The V3 quantizer clamps to ±448: nothing finite or infinite becomes NaN.
  for (float f : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, std::numeric_limits<float>::max(),
                  INFINITY}) {
    EXPECT_EQ(f32_to_fp8_e4m3(f), 0x7e) << f;
    EXPECT_EQ(f32_to_fp8_e4m3(-f), 0xfe) << f;
  }
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32(f32_to_fp8_e4m3(NAN))));
}

TEST(Bf16, WidenIsTheUpperHalf) {
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = bf16_to_f32(uint16_t(b));
    EXPECT_EQ(bits(f), b << 16) << b;
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), b) << b;  // exact values round-trip
    }
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, even below
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, even above
  EXPECT_EQ(f32_to_bf16(from_bits(0xbf818000)), 0xbf82);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f80ffff)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to +inf
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);  // subnormal tie to even (0)
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);
  // Against nearest-by-distance over a stride through all 2^32 patterns.
  for (uint64_t u = 0; u < (1ull << 32); u += 65521) {
    float f = from_bits(uint32_t(u));
    if (std::isnan(f)) continue;
    uint16_t got = f32_to_bf16(f);
    uint32_t lo = uint32_t(u) & 0xffff0000u;
    double dlo = std::fabs(double(f) - double(from_bits(lo)));
    uint32_t hi = lo + 0x10000u;  // next bf16 away from zero (may be inf)
    double vhi = (hi & 0x7fffffffu) == 0x7f800000u
                     ? std::copysign(std::ldexp(1.0, 128), double(f))  // inf sits at 2^128 for RNE
                     : double(from_bits(hi));
    double dhi = std::fabs(double(f) - vhi);
    uint16_t want = uint16_t((dlo < dhi || (dlo == dhi && (lo >> 16) % 2 == 0) ? lo : hi) >> 16);
    ASSERT_EQ(got, want) << std::hex << u;
  }
}

TEST(Bf16, NaNStaysQuietNaN) {
  for (uint32_t u :
       {0x7f800001u, 0x7fc00000u, 0xffc00000u, 0x7fffffffu, 0xff800001u, 0x7f810000u}) {
    uint16_t b = f32_to_bf16(from_bits(u));
    EXPECT_TRUE(std::isnan(bf16_to_f32(b))) << std::hex << u;
    EXPECT_TRUE(b & 0x40) << std::hex << u;  // quiet bit
    EXPECT_EQ(b >> 15, u >> 31) << std::hex << u;
  }
}

TEST(F16, AllCodesMatchTheDefinition) {
  for (uint32_t h = 0; h < 65536; ++h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float f = f16_to_f32(uint16_t(h));
    EXPECT_EQ(std::signbit(f), s == 1) << h;
    if (e == 31) {
      EXPECT_EQ(std::isnan(f), m != 0) << h;
      EXPECT_EQ(std::isinf(f), m == 0) << h;
      continue;
    }
    double v = e == 0 ? std::ldexp(double(m), -24) : (1 + m / 1024.0) * std::ldexp(1.0, e - 15);
    EXPECT_EQ(double(f), s ? -v : v) << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
}

TEST(DType, NamesSizesParse) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3, DType::I32, DType::I64}) {
    DType back;
    ASSERT_TRUE(parse_dtype(dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  DType t;
  for (const char* s : {"F64", "bf16", "F8_E5M2", "", "BOOL", "U8"})
    EXPECT_FALSE(parse_dtype(s, &t)) << s;
}

}  // namespace
}  // namespace seek

namespace seek {
namespace {

TEST(F16, RoundTripsEveryCodeAndRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << h;
  }
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);           // tie: to even (1.0)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);       // tie: to even (up)
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);                   // largest finite
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                   // rounds to inf
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);                   // half the smallest subnormal: even
  EXPECT_EQ(f32_to_f16(0x1.8p-25f), 0x0001);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
}

}  // namespace
}  // namespace seek
