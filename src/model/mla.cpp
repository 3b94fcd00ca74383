// MLA. Shapes use: T tokens in the batch, nh heads, d_h = qk_nope_head_dim, d_R =
// qk_rope_head_dim, d_v = v_head_dim, d_c = kv_lora_rank, W = d_c + d_R (one cache row).
#include "model/mla.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/attention.h"
#include "kernels/ops.h"

namespace seek::model {

using kernels::Precision;

RopeTables::RopeTables(const ModelConfig& cfg, const std::vector<int64_t>& positions)
    : half(cfg.qk_rope_head_dim / 2) {
  const std::vector<float> freqs = cfg.rope_freqs();
  const float mscale = float(cfg.rope_mscale());
  cos.resize(positions.size() * size_t(half));
  sin.resize(positions.size() * size_t(half));
  for (size_t t = 0; t < positions.size(); ++t)
    for (int64_t i = 0; i < half; ++i) {
      // The angle is a float32 product, as in model.py's precompute_freqs_cis.
      const float angle = float(positions[t]) * freqs[size_t(i)];
      cos[t * size_t(half) + size_t(i)] = std::cos(angle) * mscale;
      sin[t * size_t(half) + size_t(i)] = std::sin(angle) * mscale;
    }
}

namespace {

struct Dims {
  int64_t nh, dh, dr, dv, dc, qd, W;
  explicit Dims(const ModelConfig& c)
      : nh(c.num_attention_heads), dh(c.qk_nope_head_dim), dr(c.qk_rope_head_dim),
        dv(c.v_head_dim), dc(c.kv_lora_rank), qd(dh + dr), W(dc + dr) {}
};

// Causal softmax of score rows: row r belongs to the token at absolute position `pos`, which may
// attend to cache positions [0, pos].
void causal_softmax(float* s, int64_t len, int64_t pos, float scale) {
  for (int64_t j = 0; j < len; ++j)
    s[j] = j <= pos ? s[j] * scale : -std::numeric_limits<float>::infinity();
  kernels::softmax(s, len);
}

// A chunk's cache rows from position 0 on, W apart: F32 (training, --precise) or BF16.
struct Rows {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
};

// Chunks of at most this many tokens attend token by token with the decode kernel: decoding,
// and a speculative step's verification of its drafts (EngineOptions::spec_tokens <= 8).
constexpr int64_t kVerifyTokens = 9;

// Absorbed attention (model.py attn_impl "absorb"): q_nope·k_nope = (q_nope·W_UK_h)·c_kv, so each
// head's query is moved into the latent space once and scores run directly over cache rows
// [c_kv | k_pe]; the value projection W_UV_h is applied after the weighted sum of latents.
void attend_absorbed_chunk(const Dims& d, const MlaWeights& w, const float* q, int64_t n,
                           int64_t start, Rows rows, float scale, float* attn) {
  const int64_t end = start + n;
  std::vector<float> qf(size_t(n * d.nh * d.W));    // [n, nh, W]: [q_nope·W_UK_h | q_pe]
  for (int64_t h = 0; h < d.nh; ++h) {
    const WeightView w_uk = w.kv_b_proj.slice_rows(h * (d.dh + d.dv), d.dh);  // [d_h, d_c]
    kernels::matmul_t(q + h * d.qd, n, d.nh * d.qd, w_uk, qf.data() + h * d.W, d.nh * d.W);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(q + i * d.nh * d.qd + h * d.qd + d.dh, d.dr,
                  qf.data() + (i * d.nh + h) * d.W + d.dc);
  }
  std::vector<float> lat(size_t(n * d.nh * d.dc));  // [n, nh, d_c] = Σ_j p_j · c_kv[j]
  if (n <= kVerifyTokens) {
    // Decoding: one fused pass over the cache rows, split across the threads (flash decoding,
    // kernels/attention.h). A speculative step's tokens (the newest and its drafts) each take
    // one too, over the rows up to their own: each attends exactly as its own decoding step
    // would, so verified tokens are the ones decoding gives, bit for bit.
    for (int64_t i = 0; i < n; ++i) {
      const float* qi = qf.data() + i * d.nh * d.W;
      float* li = lat.data() + i * d.nh * d.dc;
      if (rows.bf16)
        kernels::attention_decode(qi, d.nh, d.W, rows.bf16, start + i + 1, d.W, d.W, d.dc, scale, li, d.dc);
      else
        kernels::attention_decode(qi, d.nh, d.W, rows.f32, start + i + 1, d.W, d.W, d.dc, scale, li, d.dc);
    }
  } else {
    // Prefill: scores by one product, a softmax, the weighted sum by another. For BF16 rows both
    // with the decode kernel's roundings (q in bf16, weights bf16 relative to their block's max),
    // so that a token's attention is the same whether it was prefilled this way or decoded. (The
    // naive form, which long chunks take, expands the latents and rounds otherwise.)
    const WeightView kv = rows.bf16 ? WeightView::bf16(rows.bf16, end, d.W, d.W)
                                    : WeightView::f32(rows.f32, end, d.W, d.W);  // [end, W]
    std::vector<float> s(size_t(n * d.nh * end));                // [n, nh, end]
    kernels::matmul(qf.data(), n * d.nh, d.W, kv, s.data(), end,
                    rows.bf16 ? Precision::BF16 : Precision::F32);
    parallel_ranges(n, std::max<int64_t>(1, kElementwiseGrain / (d.nh * end)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t h = 0; h < d.nh; ++h) {
          float* si = s.data() + (i * d.nh + h) * end;
          if (!rows.bf16) {
            causal_softmax(si, end, start + i, scale);
            continue;
          }
          const int64_t len = start + i + 1;
          for (int64_t j = 0; j < len; ++j) si[j] *= scale;
          kernels::attention_weights_bf16(si, len);
          std::fill(si + len, si + end, 0.0f);
        }
    });
    kernels::matmul_t(s.data(), n * d.nh, end, kv.slice_cols(0, d.dc), lat.data(), d.dc);
  }
  for (int64_t h = 0; h < d.nh; ++h) {
    const WeightView w_uv = w.kv_b_proj.slice_rows(h * (d.dh + d.dv) + d.dh, d.dv);  // [d_v, d_c]
    kernels::matmul(lat.data() + h * d.dc, n, d.nh * d.dc, w_uv, attn + h * d.dv, d.nh * d.dv);
  }
}

// Chunks of decoding size run one query token at a time: a kernel may pick another path (another
// summation order) for more rows, and speculative decoding verifies a draft in a two-token
// chunk whose first token must come out bit for bit as in one-token decoding (its greedy output
// must not change). Larger chunks (prefill) share each pass over the cache.
constexpr int64_t kPerTokenChunk = 4;

void attend_absorbed(const Dims& d, const MlaWeights& w, const float* q, int64_t n, int64_t start,
                     Rows rows, float scale, float* attn) {
  if (n > kPerTokenChunk) return attend_absorbed_chunk(d, w, q, n, start, rows, scale, attn);
  for (int64_t i = 0; i < n; ++i)
    attend_absorbed_chunk(d, w, q + i * d.nh * d.qd, 1, start + i, rows, scale,
                          attn + i * d.nh * d.dv);
}

// Naive attention (model.py attn_impl "naive"): expand every cached latent to per-head keys
// k_nope and values v with kv_b_proj, then ordinary multi-head attention with the shared k_pe.
void attend_naive(const Dims& d, const MlaWeights& w, const float* q, int64_t n, int64_t start,
                  const float* cache_rows, float scale, Precision prec, float* attn,
                  float* kvf_out = nullptr, float* probs_out = nullptr) {
  const int64_t end = start + n, kvw = d.nh * (d.dh + d.dv);
  std::vector<float> kvf(size_t(end * kvw));  // [end, nh, d_h + d_v]
  kernels::matmul(cache_rows, end, d.W, w.kv_b_proj, kvf.data(), kvw, prec);
  if (kvf_out) std::copy(kvf.begin(), kvf.end(), kvf_out);
  const WeightView k_pe = WeightView::f32(cache_rows + d.dc, end, d.dr, d.W);  // [end, d_R]
  std::vector<float> s(size_t(n * end)), s_pe(size_t(n * end));
  for (int64_t h = 0; h < d.nh; ++h) {
    const float* qh = q + h * d.qd;
    kernels::matmul(qh, n, d.nh * d.qd, WeightView::f32(kvf.data() + h * (d.dh + d.dv), end, d.dh, kvw),
                    s.data(), end);
    kernels::matmul(qh + d.dh, n, d.nh * d.qd, k_pe, s_pe.data(), end);
    parallel_ranges(n, std::max<int64_t>(1, kElementwiseGrain / end), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float* row = s.data() + i * end;
        for (int64_t j = 0; j < end; ++j) row[j] += s_pe[size_t(i * end + j)];
        causal_softmax(row, end, start + i, scale);
      }
    });
    if (probs_out) std::copy(s.begin(), s.end(), probs_out + h * n * end);
    const WeightView v = WeightView::f32(kvf.data() + h * (d.dh + d.dv) + d.dh, end, d.dv, kvw);
    kernels::matmul_t(s.data(), n, end, v, attn + h * d.dv, d.nh * d.dv);
  }
}


// Absorbed attention costs ~n·end·(W + d_c) per head; naive pays end·d_c·(d_h + d_v) once to
// expand the cache, then n·end·(d_h + d_R + d_v).
bool use_absorbed(const Dims& d, int64_t n, int64_t end, ForwardOptions::Attention mode) {
  if (mode != ForwardOptions::Attention::Auto) return mode == ForwardOptions::Attention::Absorbed;
  if (n <= kVerifyTokens) return true;  // decoding, and a speculative step's verification
  const double absorbed = double(n) * double(end) * double(d.W + d.dc);
  const double naive = double(end) * double(d.dc) * double(d.dh + d.dv) +
                       double(n) * double(end) * double(d.qd + d.dv);
  return absorbed <= naive;
}

}  // namespace

void mla_forward(const ModelConfig& cfg, const MlaWeights& w, int64_t layer, const float* xn,
                 const Batch& batch, const RopeTables& rope, KVCache* cache,
                 const ForwardOptions& opts, float* out, MlaTape* tape) {
  const Dims d(cfg);
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const Precision prec = opts.precision;
  const float eps = float(cfg.rms_norm_eps);

  // Queries: q = q_b_proj(RMSNorm(q_a_proj(x))) with a q LoRA, else q_proj(x).   [T, nh, d_h+d_R]
  std::vector<float> q(size_t(T * d.nh * d.qd));
  if (cfg.q_lora_rank > 0) {
    const int64_t r = cfg.q_lora_rank;
    std::vector<float> qa(size_t(T * r));
    kernels::matmul(xn, T, H, w.q_a_proj, qa.data(), r, prec);
    if (tape) tape->qa = qa;
    for (int64_t t = 0; t < T; ++t)
      kernels::rmsnorm(qa.data() + t * r, w.q_a_layernorm.data(), qa.data() + t * r, r, eps);
    kernels::matmul(qa.data(), T, r, w.q_b_proj, q.data(), d.nh * d.qd, prec);
    if (tape) tape->qa_n.keep(std::move(qa), r, prec == Precision::FP8);
  } else {
    kernels::matmul(xn, T, H, w.q_proj, q.data(), d.nh * d.qd, prec);
  }
  // Compressed KV: [c_kv | k_pe] = kv_a_proj_with_mqa(x)                          [T, d_c + d_R]
  std::vector<float> kv(size_t(T * d.W));
  kernels::matmul(xn, T, H, w.kv_a_proj_with_mqa, kv.data(), d.W, prec);

  // Rows [RMSNorm(c_kv) | rotated k_pe] (one rope key shared by all heads) go to the cache, or,
  // for whole sequences, to the batch's own [T, W] buffer (the tape's, when there is one).
  std::vector<int64_t> first(batch.seqs.size());  // each chunk's first token in the batch
  int64_t t = 0;
  for (size_t i = 0; i < batch.seqs.size(); ++i) first[i] = t, t += batch.seqs[i].n_tokens;
  std::vector<float> own_rows;
  if (!cache) {
    for (const SeqChunk& sc : batch.seqs)
      if (sc.start_pos != 0) fail("mla_forward: without a KV cache every chunk must start at position 0");
    (tape ? tape->rows : own_rows).resize(size_t(T * d.W));
  } else if (tape) {
    fail("mla_forward: a training tape needs whole sequences (no KV cache)");
  }
  float* own = tape ? tape->rows.data() : own_rows.data();
  const bool bf16_cache = cache && cache->dtype() == DType::BF16;
  // F32 rows of chunk i from position 0 on, W apart (a BF16 cache: null).
  auto chunk_rows = [&](size_t i) -> float* {
    return cache ? cache->row(batch.seqs[i].slot, layer, 0) : own + first[i] * d.W;
  };
  std::vector<float> row_buf(size_t(d.W));  // a BF16 cache row before its rounding
  if (tape) {
    tape->kv = kv;
    tape->kvf.resize(size_t(T * d.nh * (d.dh + d.dv)));
    int64_t n_probs = 0;
    for (const SeqChunk& sc : batch.seqs) n_probs += d.nh * sc.n_tokens * sc.n_tokens;
    tape->probs.resize(size_t(n_probs));
  }

  t = 0;
  for (size_t c = 0; c < batch.seqs.size(); ++c) {
    const SeqChunk& sc = batch.seqs[c];
    for (int64_t i = 0; i < sc.n_tokens; ++i, ++t) {
      const int64_t pos = sc.start_pos + i;
      if (cache && pos >= cache->capacity())
        fail("position {} exceeds the KV cache capacity {}", pos, cache->capacity());
      float* row = bf16_cache ? row_buf.data() : chunk_rows(c) + pos * d.W;
      const float* cs = rope.cos.data() + t * rope.half;
      const float* sn = rope.sin.data() + t * rope.half;
      kernels::rmsnorm(kv.data() + t * d.W, w.kv_a_layernorm.data(), row, d.dc, eps);
      std::copy_n(kv.data() + t * d.W + d.dc, d.dr, row + d.dc);
      kernels::rope_interleaved(row + d.dc, d.dr, cs, sn);
      if (bf16_cache) {
        uint16_t* dst = cache->row16(sc.slot, layer, pos);
        for (int64_t k = 0; k < d.W; ++k) dst[k] = f32_to_bf16(row[k]);
      }
      for (int64_t h = 0; h < d.nh; ++h)
        kernels::rope_interleaved(q.data() + (t * d.nh + h) * d.qd + d.dh, d.dr, cs, sn);
    }
  }

  const float scale = float(cfg.softmax_scale());
  std::vector<float> attn(size_t(T * d.nh * d.dv));  // [T, nh, d_v]
  auto attend = [&](size_t i) {
    const SeqChunk& sc = batch.seqs[i];
    const Rows rows = bf16_cache ? Rows{nullptr, cache->row16(sc.slot, layer, 0)} : Rows{chunk_rows(i)};
    const float* qs = q.data() + first[i] * d.nh * d.qd;
    float* as = attn.data() + first[i] * d.nh * d.dv;
    const int64_t end = sc.start_pos + sc.n_tokens;
    if (use_absorbed(d, sc.n_tokens, end, opts.attention)) {
      attend_absorbed(d, w, qs, sc.n_tokens, sc.start_pos, rows, scale, as);
    } else if (rows.bf16) {  // the naive form expands the latents: widen them first
      std::vector<float> wide(size_t(end * d.W));
      for (size_t k = 0; k < wide.size(); ++k) wide[k] = bf16_to_f32(rows.bf16[k]);
      attend_naive(d, w, qs, sc.n_tokens, sc.start_pos, wide.data(), scale, prec, as);
    } else {
      attend_naive(d, w, qs, sc.n_tokens, sc.start_pos, rows.f32, scale, prec, as);
    }
  };
  if (tape) {
    int64_t probs_off = 0;
    for (size_t i = 0; i < batch.seqs.size(); ++i) {
      const SeqChunk& sc = batch.seqs[i];
      attend_naive(d, w, q.data() + first[i] * d.nh * d.qd, sc.n_tokens, 0,
                   chunk_rows(i), scale, prec, attn.data() + first[i] * d.nh * d.dv,
                   tape->kvf.data() + first[i] * d.nh * (d.dh + d.dv), tape->probs.data() + probs_off);
      probs_off += d.nh * sc.n_tokens * sc.n_tokens;
    }
  } else {
    // Decode and verification chunks of many sequences (batched serving) are small problems:
    // they are spread over the threads, one sequence each at a time (a lone sequence runs on
    // this thread, and attention_decode splits its cache rows over every thread). Longer chunks
    // (prefill) then run one after another with every thread inside their products.
    std::vector<size_t> small, large;
    for (size_t i = 0; i < batch.seqs.size(); ++i)
      (batch.seqs[i].n_tokens <= kVerifyTokens ? small : large).push_back(i);
    parallel_for(int64_t(small.size()), max_threads(), [&](int64_t j) { attend(small[size_t(j)]); });
    for (size_t i : large) attend(i);
  }
  kernels::matmul(attn.data(), T, d.nh * d.dv, w.o_proj, out, H, prec);
  if (tape) {
    tape->q = std::move(q);
    tape->attn = std::move(attn);
  }
}

}  // namespace seek::model
