#include "model/mtp.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/gemm_train.h"
#include "kernels/ops.h"
#include "model/weight_grad.h"

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

void mtp_draft(const Model& m, KVCache& cache, const float* h_prev, const Batch& batch,
               std::vector<float>& logits, const ForwardOptions& opts, std::vector<float>* hidden) {
  const ModelConfig& cfg = m.config();
  if (m.weights().mtp.empty()) fail("speculative decoding: the model has no MTP module");
  if (cache.layers() <= cfg.num_hidden_layers)
    fail("speculative decoding: the KV cache has no layer for the MTP module");
  const MtpWeights& w = m.weights().mtp[0];
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size, V = cfg.vocab_size;
  std::vector<int64_t> positions;
  positions.reserve(size_t(T));
  for (const SeqChunk& sc : batch.seqs) {
    if (sc.start_pos + sc.n_tokens > cache.capacity())
      fail("context full: {} positions exceed the KV cache capacity {}", sc.start_pos + sc.n_tokens,
           cache.capacity());
    for (int64_t i = 0; i < sc.n_tokens; ++i) positions.push_back(sc.start_pos + i);
  }
  if (int64_t(positions.size()) != T) fail("batch: {} tokens but the chunks cover {}", T, positions.size());
  const RopeTables rope(cfg, positions);
  std::vector<float> h(size_t(T * H));
  mtp_forward(cfg, w, 0, h_prev, batch, rope, &cache, opts, h.data());
  const int64_t n = int64_t(batch.seqs.size());
  std::vector<float> rows(size_t(n * H));
  if (hidden) hidden->resize(size_t(n * H));
  int64_t t = 0;
  for (int64_t i = 0; i < n; ++i) {
    t += batch.seqs[size_t(i)].n_tokens;
    if (hidden) std::copy_n(h.data() + (t - 1) * H, H, hidden->data() + i * H);
    kernels::rmsnorm(h.data() + (t - 1) * H, w.shared_head_norm.data(), rows.data() + i * H, H,
                     float(cfg.rms_norm_eps));
  }
  logits.resize(size_t(n * V));
  kernels::matmul(rows.data(), n, H, w.shared_head_head, logits.data(), V, opts.precision);
}

void mtp_backward(const ModelConfig& cfg, const MtpWeights& w, const Batch& batch,
                  const RopeTables& rope, const MtpTape& tape, const float* dh_out,
                  float* dh_prev, MtpGrads& g, float* g_embed, kernels::Precision prec) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> dh(dh_out, dh_out + T * H), dcat(size_t(T * 2 * H));
  block_backward(cfg, w.block, batch, rope, tape.block, dh.data(), g.block, nullptr, prec);
  if (w.eh_proj.dtype != DType::F32) fail("mtp_backward: eh_proj must be float32");
  const float* weh = static_cast<const float*>(w.eh_proj.data);
  kernels::gemm_dyw(dh.data(), weh, dcat.data(), T, H, 2 * H, false, prec);
  if (g.eh_proj) weight_grad(dh.data(), tape.cat.data(), g.eh_proj, T, H, 2 * H, prec);
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
