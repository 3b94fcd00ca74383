// matmul against block-quantized weights for AVX2 (maddubs + madd integer dots).
#define SEEK_QUANT_NS avx2
#define SEEK_QUANT_VNNI 0
#include "kernels/matmul_quant_x86.h"
