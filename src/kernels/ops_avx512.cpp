// exp_shifted for AVX-512 (16 lanes; 2^n by vscalefps).
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own code (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define SEEK_SIMD_NS avx512
#define SEEK_SIMD_AVX512 1
#include "kernels/ops_x86.h"
