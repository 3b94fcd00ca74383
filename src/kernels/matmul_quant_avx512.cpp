// matmul against block-quantized weights for AVX-512 with VNNI (vpdpbusd / vpdpwssd integer dots).
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own code (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define SEEK_QUANT_NS avx512
#define SEEK_QUANT_VNNI 1
#include "kernels/matmul_quant_x86.h"
