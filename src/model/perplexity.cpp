#include "model/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace seek::model {

double PerplexityResult::ppl() const { return tokens ? std::exp(nll / double(tokens)) : 0.0; }
double PerplexityResult::ref_ppl() const {
  return tokens ? std::exp(ref_nll / double(tokens)) : 0.0;
}

namespace {

// log-softmax of one row, in double.
void log_softmax(const float* row, int64_t V, std::vector<double>& out) {
  out.resize(size_t(V));
  const double mx = *std::max_element(row, row + V);
  double z = 0.0;
  for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
  const double lz = mx + std::log(z);
  for (int64_t v = 0; v < V; ++v) out[size_t(v)] = double(row[v]) - lz;
}

// The logits [ctx, V] of one chunk: one prefill from position 0.
void chunk_logits(const Model& m, std::span<const int32_t> chunk, kernels::Precision p,
                  std::vector<float>& logits) {
  const ModelConfig& c = m.config();
  KVCache cache(c, 1, int64_t(chunk.size()));
  Batch batch;
  batch.tokens.assign(chunk.begin(), chunk.end());
  batch.seqs.push_back({.slot = 0, .start_pos = 0, .n_tokens = int64_t(chunk.size()),
                        .all_logits = true});
  ForwardOptions fo;
  fo.precision = p;
  forward(m, cache, batch, logits, fo);
  if (logits.size() != chunk.size() * size_t(c.vocab_size))
    fail("perplexity: forward returned {} logits for {} tokens", logits.size(), chunk.size());
}

}  // namespace

PerplexityResult perplexity(const Model& m, std::span<const int32_t> ids,
                            const PerplexityOptions& opt, const Model* ref) {
  const ModelConfig& c = m.config();
  const int64_t ctx = opt.ctx, V = c.vocab_size;
  if (ctx < 4) fail("perplexity: the context must be at least 4 tokens (got {})", ctx);
  if (ctx > c.max_position_embeddings)
    fail("perplexity: a context of {} tokens exceeds the model's max_position_embeddings {}", ctx,
         c.max_position_embeddings);
  if (ref && ref->config().vocab_size != V)
    fail("perplexity: the reference's vocabulary ({}) differs from the model's ({})",
         ref->config().vocab_size, V);
  if (ref && ctx > ref->config().max_position_embeddings)
    fail("perplexity: a context of {} tokens exceeds the reference's max_position_embeddings {}",
         ctx, ref->config().max_position_embeddings);
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      fail("perplexity: token {} at position {} is outside the vocabulary (vocab_size {})", ids[i],
           i, V);
  int64_t chunks = int64_t(ids.size()) / ctx;
  if (chunks == 0)
    fail("perplexity: {} tokens are fewer than one chunk of {} (give more text or a smaller "
         "context)",
         ids.size(), ctx);
  if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);

  PerplexityResult r;
  std::vector<int32_t> chunk(static_cast<size_t>(ctx));
  std::vector<float> logits, ref_logits;
  std::vector<double> lp, lq;
  for (int64_t k = 0; k < chunks; ++k) {
    std::copy_n(ids.begin() + k * ctx, ctx, chunk.begin());
    chunk[0] = int32_t(c.bos_token_id);
    chunk_logits(m, chunk, opt.precision, logits);
    if (ref) chunk_logits(*ref, chunk, opt.precision, ref_logits);
    for (int64_t j = ctx / 2; j < ctx - 1; ++j) {
      const int32_t y = chunk[size_t(j + 1)];
      log_softmax(logits.data() + j * V, V, lp);
      r.nll -= lp[size_t(y)];
      ++r.tokens;
      if (!ref) continue;
      log_softmax(ref_logits.data() + j * V, V, lq);
      r.ref_nll -= lq[size_t(y)];
      double kl = 0.0;
      for (int64_t v = 0; v < V; ++v) kl += std::exp(lq[size_t(v)]) * (lq[size_t(v)] - lp[size_t(v)]);
      kl = std::max(kl, 0.0);  // rounding can leave −1e-17 where the two agree
      r.kl += kl;
      r.kl_max = std::max(r.kl_max, kl);
      const auto top = [](const std::vector<double>& x) {
        return std::max_element(x.begin(), x.end()) - x.begin();
      };
      r.same_top += top(lp) == top(lq);
      const double dp = std::exp(lp[size_t(y)]) - std::exp(lq[size_t(y)]);
      r.dp_sq += dp * dp;
    }
    ++r.chunks;
    if (opt.progress) opt.progress(k + 1, chunks);
  }
  return r;
}

}  // namespace seek::model
