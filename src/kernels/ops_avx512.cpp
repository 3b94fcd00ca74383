// exp_shifted for AVX-512 (16 lanes; 2^n by vscalefps).
#define SEEK_SIMD_NS avx512
#define SEEK_SIMD_AVX512 1
#include "kernels/ops_x86.h"
