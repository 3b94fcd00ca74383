#include "model/transformer.h"

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/gguf.h"
#include "kernels/ops.h"
#include "model/gguf_import.h"
#include "model/mla.h"
#include "model/moe.h"
#include "model/tensors.h"

namespace seek::model {

using kernels::Precision;

std::unique_ptr<Model> Model::load(const std::string& dir, const LoadOptions& opts) {
  auto m = std::unique_ptr<Model>(new Model());
  m->dir_ = dir;
  const auto range = [&](const ModelConfig& c) {
    const int64_t L = c.num_hidden_layers;
    m->first_layer_ = opts.first_layer;
    m->last_layer_ = opts.last_layer < 0 ? L : opts.last_layer;
    if (m->first_layer_ < 0 || m->first_layer_ >= m->last_layer_ || m->last_layer_ > L)
      fail("{}: a pipeline stage of layers [{}, {}) in a model of {}", dir, m->first_layer_,
           m->last_layer_, L);
  };
  if (is_gguf_file(dir)) {  // a llama.cpp deepseek2 file: config and tensors under HF names
    GgufModel g = import_gguf(dir, opts.mode, opts.progress);
    m->config_ = std::move(g.config);
    m->store_ = std::move(g.store);
    range(m->config_);
  } else {
    m->config_ = ModelConfig::load(dir);
    range(m->config_);
    std::function<bool(std::string_view)> keep;
    std::set<std::string, std::less<>> names;
    if (m->is_stage() || !opts.experts.whole()) {  // read only its tensors (and their FP8 scales)
      for (const TensorSpec& t : model_tensors(m->config_))
        if (in_stage(t, m->config_, m->first_layer_, m->last_layer_) && in_share(t, opts.experts)) {
          names.insert(t.name);
          names.insert(t.name + "_scale_inv");
        }
      keep = [&names](std::string_view n) { return names.count(n) > 0; };
    }
    m->store_ = TensorStore::open(dir, opts.mode, opts.progress, keep);
  }
  if (!opts.experts.whole() && is_gguf_file(dir))
    fail("{}: a .gguf file's stacked experts are not split across ranks", dir);
  m->weights_ = bind_weights(m->config_, m->store_, m->first_layer_, m->last_layer_, opts.experts);
  return m;
}

std::unique_ptr<Model> Model::borrow(const ModelConfig& cfg, ModelWeights w) {
  auto m = std::unique_ptr<Model>(new Model());
  m->config_ = cfg;
  m->last_layer_ = cfg.num_hidden_layers;
  m->weights_ = std::move(w);
  return m;
}

void embed(const WeightView& table, const int32_t* ids, int64_t T, float* h) {
  const int64_t V = table.rows, H = table.cols;
  for (int64_t t = 0; t < T; ++t) {
    if (ids[t] < 0 || ids[t] >= V) fail("token id {} is outside the vocabulary (size {})", ids[t], V);
    kernels::dequantize_row(table, ids[t], h + t * H);
  }
}

void block_forward(const ModelConfig& cfg, const LayerWeights& lw, int64_t layer, float* h,
                   const Batch& batch, const RopeTables& rope, KVCache* cache,
                   const ForwardOptions& opts, Routing* routing, BlockTape* tape) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  std::vector<float> xn(size_t(T * H)), y(size_t(T * H));
  if (tape) tape->h_in.assign(h, h + T * H);
  // h += MLA(RMSNorm(h))
  for (int64_t t = 0; t < T; ++t)
    kernels::rmsnorm(h + t * H, lw.input_layernorm.data(), xn.data() + t * H, H, eps);
  mla_forward(cfg, lw.attn, layer, xn.data(), batch, rope, cache, opts, y.data(),
              tape ? &tape->attn : nullptr);
  for (int64_t i = 0; i < T * H; ++i) h[i] += y[size_t(i)];
  if (tape) {
    tape->xn1.keep(xn.data(), T, H, opts.precision == kernels::Precision::FP8);
    tape->h_mid.assign(h, h + T * H);
  }
  // h += FFN(RMSNorm(h)), dense or DeepSeekMoE
  for (int64_t t = 0; t < T; ++t)
    kernels::rmsnorm(h + t * H, lw.post_attention_layernorm.data(), xn.data() + t * H, H, eps);
  if (lw.is_moe)
    moe_forward(cfg, lw.moe, xn.data(), T, y.data(), opts.precision, routing,
                tape ? &tape->moe : nullptr, opts.experts);
  else ffn_forward(lw.mlp, xn.data(), T, H, y.data(), opts.precision, tape ? &tape->mlp : nullptr);
  for (int64_t i = 0; i < T * H; ++i) h[i] += y[size_t(i)];
  if (tape) tape->xn2.keep(std::move(xn), H, opts.precision == kernels::Precision::FP8);
}

void forward(const Model& m, KVCache& cache, const Batch& batch, std::vector<float>& logits,
             const ForwardOptions& opts) {
  const ModelConfig& cfg = m.config();
  const ModelWeights& w = m.weights();
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size, V = cfg.vocab_size;
  const float eps = float(cfg.rms_norm_eps);

  int64_t n_tok = 0, n_out = 0;
  std::vector<int64_t> positions;
  positions.reserve(size_t(T));
  for (const SeqChunk& sc : batch.seqs) {
    if (sc.slot < 0 || sc.slot >= cache.n_slots()) fail("batch: KV slot {} does not exist", sc.slot);
    if (sc.n_tokens <= 0) fail("batch: empty sequence chunk");
    if (sc.start_pos > cache.length(sc.slot))
      fail("batch: chunk starts at {} but slot {} holds only {} positions", sc.start_pos, sc.slot,
           cache.length(sc.slot));
    if (sc.start_pos + sc.n_tokens > cache.capacity())
      fail("context full: {} positions exceed the KV cache capacity {}", sc.start_pos + sc.n_tokens,
           cache.capacity());
    for (int64_t i = 0; i < sc.n_tokens; ++i) positions.push_back(sc.start_pos + i);
    n_tok += sc.n_tokens;
    n_out += sc.all_logits ? sc.n_tokens : 1;
  }
  if (n_tok != T) fail("batch: {} tokens but the chunks cover {}", T, n_tok);
  // Checked before the other processes of a split model are told to run the batch.
  for (int32_t id : batch.tokens)
    if (id < 0 || id >= V) fail("token id {} is outside the vocabulary (size {})", id, V);

  // A pipeline stage runs its layers only: stage 0 embeds (after telling the others what to
  // run), later stages take the previous one's hidden states.
  const PipelineLink* link = m.pipeline();
  const int64_t first = m.first_layer(), last = m.last_layer();
  if (m.is_stage() && !link) fail("forward: a pipeline stage (layers [{}, {})) without its link", first, last);
  if (link && (opts.hidden_states || opts.last_hidden || opts.routing || opts.experts))
    fail("forward: hidden states, routing and expert parallelism are not available across pipeline stages");
  if (link && link->stage() == 0)
    link->announce({{}, batch, opts, cache.n_slots(), cache.capacity(), cache.dtype()});
  // Routed experts across processes: the group's expert ranks run this forward's MoE layers
  // with this process.
  ForwardOptions fo = opts;
  if (const ExpertServers* group = m.experts(); group && group->exchange().size() > 1) {
    if (opts.experts) fail("forward: the model's experts are already split across processes");
    group->start(opts.precision, T);
    fo.experts = &group->exchange();
  }

  // h = embed_tokens[ids]                                                           [T, H]
  std::vector<float> h(size_t(T * H));
  if (first == 0) {
    embed(w.embed_tokens, batch.tokens.data(), T, h.data());
  } else {
    link->recv_prev(h);
    if (int64_t(h.size()) != T * H) fail("pipeline: {} hidden values from the previous stage, expected {}", h.size(), T * H);
  }
  if (opts.hidden_states) {
    opts.hidden_states->clear();
    opts.hidden_states->insert(opts.hidden_states->end(), h.begin(), h.end());
  }

  if (opts.routing) opts.routing->assign(size_t(cfg.num_hidden_layers), Routing{});
  const RopeTables rope(cfg, positions);
  for (int64_t l = first; l < last; ++l) {
    block_forward(cfg, w.layers[size_t(l)], l, h.data(), batch, rope, &cache, fo,
                  opts.routing ? &(*opts.routing)[size_t(l)] : nullptr);
    if (opts.hidden_states) opts.hidden_states->insert(opts.hidden_states->end(), h.begin(), h.end());
  }
  for (const SeqChunk& sc : batch.seqs)
    cache.set_length(sc.slot, std::max(cache.length(sc.slot), sc.start_pos + sc.n_tokens));
  if (opts.last_hidden) opts.last_hidden->assign(h.begin(), h.end());
  if (last < cfg.num_hidden_layers) {  // not the last stage: on to the next
    link->send_next(h);
    logits.assign(link->stage() == 0 ? size_t(n_out * V) : 0, 0.0f);
    if (link->stage() == 0) link->recv_logits(logits);
    return;
  }

  // logits = lm_head(RMSNorm(h)) for the rows asked for                           [n_out, V]
  std::vector<float> rows(size_t(n_out * H));
  int64_t t = 0, o = 0;
  for (const SeqChunk& sc : batch.seqs) {
    for (int64_t i = sc.all_logits ? 0 : sc.n_tokens - 1; i < sc.n_tokens; ++i, ++o)
      kernels::rmsnorm(h.data() + (t + i) * H, w.norm.data(), rows.data() + o * H, H, eps);
    t += sc.n_tokens;
  }
  logits.resize(size_t(n_out * V));
  kernels::matmul(rows.data(), n_out, H, w.lm_head, logits.data(), V, opts.precision);
  if (link && link->stage() != 0) link->send_logits(logits);
}

void copy_cache_prefix(const Model& m, KVCache& cache, int src, int dst, int64_t n) {
  if (src < 0 || src >= cache.n_slots() || dst < 0 || dst >= cache.n_slots() || n < 0 || n > cache.capacity())
    fail("KV cache: cannot copy {} rows from slot {} to slot {}", n, src, dst);
  if (const PipelineLink* link = m.pipeline(); link && link->stage() == 0) {
    StageWork w;
    w.copy = {src, dst, n};
    w.n_slots = cache.n_slots();
    w.capacity = cache.capacity();
    w.cache_dtype = cache.dtype();
    link->announce(w);
  }
  // Rows of one slot and layer are contiguous: one memcpy per layer.
  for (int64_t l = 0; l < cache.layers(); ++l)
    std::memcpy(cache.raw(dst, l, 0), cache.raw(src, l, 0), size_t(n * cache.width() * cache.element_bytes()));
  cache.set_length(dst, n);
}

void follow_stage(const Model& m) {
  const PipelineLink* link = m.pipeline();
  if (!link || link->stage() == 0) fail("follow_stage: not a following pipeline stage");
  std::unique_ptr<KVCache> cache;
  std::vector<float> logits;
  while (std::optional<StageWork> w = link->next()) {
    if (!cache || cache->n_slots() != w->n_slots || cache->capacity() != w->capacity ||
        cache->dtype() != w->cache_dtype)
      cache = std::make_unique<KVCache>(m.config(), w->n_slots, w->capacity, 0, w->cache_dtype);
    if (w->copy.src >= 0) copy_cache_prefix(m, *cache, w->copy.src, w->copy.dst, w->copy.n);
    else forward(m, *cache, w->batch, logits, w->options);
  }
  link->followed();
}

void serve_experts(const Model& m) {
  const ExpertServers* group = m.experts();
  if (!group || group->exchange().rank() == 0) fail("serve_experts: not an expert rank");
  const ModelConfig& cfg = m.config();
  // Each MoE layer of the stage, in order, as rank 0 runs them: with no tokens of its own, this
  // rank only runs its experts on the rows it receives.
  while (std::optional<kernels::Precision> precision = group->next())
    for (int64_t l = m.first_layer(); l < m.last_layer(); ++l)
      if (cfg.is_moe_layer(l))
        moe_forward(cfg, m.weights().layers[size_t(l)].moe, nullptr, 0, nullptr, *precision,
                    nullptr, nullptr, &group->exchange());
  group->served();
}

namespace {
int64_t view_bytes(const WeightView& v) {
  int64_t b = v.rows * dtype_bytes(v.dtype, v.cols);  // whole blocks per row for GGML types
  if (v.scale_inv) b += ((v.rows + 127) / 128) * v.scale_ld * 4;
  return b;
}
int64_t ffn_bytes(const FfnWeights& f) {
  return view_bytes(f.gate_proj) + view_bytes(f.up_proj) + view_bytes(f.down_proj);
}
int64_t ffn_params(const FfnWeights& f) {
  return f.gate_proj.rows * f.gate_proj.cols * 3;
}
}  // namespace

ModelStats model_stats(const Model& m) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  ModelStats s;
  for (const Tensor& t : m.weights_store().tensors()) {
    s.weight_bytes_total += int64_t(t.nbytes);
    if (t.name.size() < 10 || t.name.compare(t.name.size() - 10, 10, "_scale_inv") != 0)
      s.params_total += t.numel();
  }
  const int64_t H = c.hidden_size;
  // Per decoded token: one embedding row, every attention and dense weight, the router,
  // shared experts and k routed experts per MoE layer, the final norm and the head.
  int64_t bytes = dtype_bytes(w.embed_tokens.dtype, H) + view_bytes(w.lm_head);
  int64_t params = w.embed_tokens.rows * H + (c.tie_word_embeddings ? 0 : w.lm_head.rows * H);
  for (const LayerWeights& l : w.layers) {
    const MlaWeights& a = l.attn;
    for (const WeightView* v : {&a.q_a_proj, &a.q_b_proj, &a.q_proj, &a.kv_a_proj_with_mqa,
                                &a.kv_b_proj, &a.o_proj})
      if (v->data) { bytes += view_bytes(*v); params += v->rows * v->cols; }
    if (!l.is_moe) {
      bytes += ffn_bytes(l.mlp);
      params += ffn_params(l.mlp);
      continue;
    }
    bytes += view_bytes(l.moe.gate);
    params += l.moe.gate.rows * l.moe.gate.cols;
    if (c.n_shared_experts > 0) {
      bytes += ffn_bytes(l.moe.shared_experts);
      params += ffn_params(l.moe.shared_experts);
    }
    bytes += c.num_experts_per_tok * ffn_bytes(l.moe.experts[0]);
    params += c.num_experts_per_tok * ffn_params(l.moe.experts[0]);
  }
  s.weight_bytes_per_token = bytes;
  s.params_active = params;
  const int64_t elt = 2;  // the engine's BF16 cache (--precise keeps F32: twice this)
  s.kv_bytes_per_token = c.kv_values_per_token_per_layer() * c.num_hidden_layers * elt;
  s.mha_kv_bytes_per_token = c.mha_kv_values_per_token_per_layer() * c.num_hidden_layers * elt;
  return s;
}

}  // namespace seek::model
