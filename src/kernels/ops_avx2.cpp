// exp_shifted for AVX2 (8 lanes; 2^n through the exponent field).
#define SEEK_SIMD_NS avx2
#define SEEK_SIMD_AVX512 0
#include "kernels/ops_x86.h"
