#include "model/mtp.h"

#include "core/error.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"

namespace seek::model {

using kernels::rmsnorm_backward;

void mtp_forward(const ModelConfig& cfg, const MtpWeights& w, int64_t k, const float* h_prev,
                 const Batch& batch, const RopeTables& rope, KVCache* cache,
                 const ForwardOptions& opts, float* h_out, Routing* routing, MtpTape* tape) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> emb(size_t(T * H)), cat(size_t(T * 2 * H));  // cat: [T, 2H]
  embed(w.embed_tokens, batch.tokens.data(), T, emb.data());
  for (int64_t t = 0; t < T; ++t) {
    kernels::rmsnorm(emb.data() + t * H, w.enorm.data(), cat.data() + t * 2 * H, H, eps);
    kernels::rmsnorm(h_prev + t * H, w.hnorm.data(), cat.data() + t * 2 * H + H, H, eps);
  }
  kernels::matmul(cat.data(), T, w.eh_proj, h_out, opts.precision);  // [T, H]
  if (tape) {
    tape->emb = std::move(emb);
    tape->h_prev.assign(h_prev, h_prev + T * H);
    tape->cat = std::move(cat);
  }
  block_forward(cfg, w.block, cfg.num_hidden_layers + k, h_out, batch, rope, cache, opts, routing,
                tape ? &tape->block : nullptr);
}

void mtp_backward(const ModelConfig& cfg, const MtpWeights& w, const Batch& batch,
                  const RopeTables& rope, const MtpTape& tape, const float* dh_out,
                  float* dh_prev, MtpGrads& g, float* g_embed) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> dh(dh_out, dh_out + T * H), dcat(size_t(T * 2 * H));
  block_backward(cfg, w.block, batch, rope, tape.block, dh.data(), g.block);
  if (w.eh_proj.dtype != DType::F32) fail("mtp_backward: eh_proj must be float32");
  const float* weh = static_cast<const float*>(w.eh_proj.data);
  kernels::gemm_dyw(dh.data(), weh, dcat.data(), T, H, 2 * H, false);
  if (g.eh_proj) kernels::gemm_dytx(dh.data(), tape.cat.data(), g.eh_proj, T, H, 2 * H);
  std::vector<float> de(size_t(T * H));  // gradient of the embeddings
  for (int64_t t = 0; t < T; ++t) {
    rmsnorm_backward(tape.emb.data() + t * H, w.enorm.data(), dcat.data() + t * 2 * H,
                     de.data() + t * H, g.enorm, H, eps);
    rmsnorm_backward(tape.h_prev.data() + t * H, w.hnorm.data(), dcat.data() + t * 2 * H + H,
                     dh_prev + t * H, g.hnorm, H, eps);
  }
  embed_backward(batch.tokens.data(), T, H, de.data(), g_embed);
}

}  // namespace seek::model
