// attention_decode's blocks for AVX2 (8 heads per vector, fp32 FMAs).
#define SEEK_SIMD_NS avx2
#define SEEK_SIMD_AVX512 0
#include "kernels/attention_x86.h"

namespace seek::kernels::avx2 {

void decode_blocks(const DecodeArgs& a, int64_t b0, int64_t b1, float* states) {
  decode_blocks_fma(a, b0, b1, states);
}

float block_weights_bf16(float* s, int64_t n, float* l) { return block_weights_row(s, n, l); }

}  // namespace seek::kernels::avx2
