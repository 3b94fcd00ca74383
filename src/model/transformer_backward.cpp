// Backward of one decoder block (see block_forward): the residual stream passes the gradient
// through unchanged, each branch adds its own.
#include <vector>

#include "kernels/ops.h"
#include "model/transformer.h"

namespace seek::model {

using kernels::rmsnorm_backward;

void block_backward(const ModelConfig& cfg, const LayerWeights& lw, const Batch& batch,
                    const RopeTables& rope, const BlockTape& tape, float* dh, LayerGrads& g,
                    const float* dscores) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> dxn(size_t(T * H));
  // h_out = h_mid + FFN(RMSNorm(h_mid))
  if (lw.is_moe)
    moe_backward(cfg, lw.moe, tape.xn2.data(), T, tape.moe, dh, dscores, dxn.data(), g.moe);
  else
    ffn_backward(lw.mlp, tape.xn2.data(), T, H, tape.mlp, dh, dxn.data(), g.mlp);
  for (int64_t t = 0; t < T; ++t) {
    float* d = dxn.data() + t * H;
    rmsnorm_backward(tape.h_mid.data() + t * H, lw.post_attention_layernorm.data(), d, d,
                     g.post_attention_layernorm, H, eps);
    for (int64_t j = 0; j < H; ++j) dh[t * H + j] += d[j];
  }
  // h_mid = h_in + MLA(RMSNorm(h_in))
  mla_backward(cfg, lw.attn, tape.xn1.data(), batch, rope, tape.attn, dh, dxn.data(), g.attn);
  for (int64_t t = 0; t < T; ++t) {
    float* d = dxn.data() + t * H;
    rmsnorm_backward(tape.h_in.data() + t * H, lw.input_layernorm.data(), d, d,
                     g.input_layernorm, H, eps);
    for (int64_t j = 0; j < H; ++j) dh[t * H + j] += d[j];
  }
}

}  // namespace seek::model
