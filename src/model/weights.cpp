#include "model/weights.h"

#include <cstring>
#include <set>

#include "core/error.h"
#include "model/tensors.h"

namespace seek::model {
namespace {

// Binds tensors by name, remembering which ones were used so leftovers can be reported.
class Binder {
 public:
  Binder(const ModelConfig& cfg, const TensorStore& store) : cfg_(cfg), store_(store) {}

  const Tensor& tensor(const std::string& name, std::vector<int64_t> shape) {
    const Tensor* t = store_.find(name);
    if (!t) fail("{}: tensor {} is missing", store_.dir(), name);
    if (t->shape != shape)
      fail("{}: tensor {} has shape {}, expected {}", t->file, name, t->shape_str(),
           shape_str(shape));
    used_.insert(name);
    return *t;
  }

  // A linear weight [out, in] (see linear_view), its weight_scale_inv counted as used.
  WeightView linear(const std::string& name, int64_t out, int64_t in) {
    const Tensor& t = tensor(name, {out, in});
    if (t.dtype == DType::F8_E4M3) used_.insert(name + "_scale_inv");
    return linear_view(store_, name, out, in);
  }

  // Small vectors (norm gains, router bias) are widened to float32.
  std::vector<float> vec(const std::string& name, int64_t n) {
    const Tensor& t = tensor(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    if (!copy_as_f32(t, out.data()))
      fail("{}: tensor {} has dtype {}, expected F32/BF16/F16", t.file, name, dtype_name(t.dtype));
    return out;
  }

  void check_all_used() const {
    for (const Tensor& t : store_.tensors())
      // A reward model's scalar head (transformers' sequence-classification `score`, written by
      // `seek rm`) rides along; the causal LM does not use it.
      if (!used_.count(t.name) && t.name != "score.weight" && t.name != "score.bias")
        fail("{}: unexpected tensor {} {} (not part of a {} model with this config.json)", t.file,
             t.name, t.shape_str(), cfg_.model_type);
  }

 private:
  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }
  const ModelConfig& cfg_;
  const TensorStore& store_;
  std::set<std::string> used_;
};

}  // namespace

WeightView linear_view(const TensorStore& store, const std::string& name, int64_t out, int64_t in) {
  const Tensor* tp = store.find(name);
  if (!tp) fail("{}: tensor {} is missing", store.dir(), name);
  const Tensor& t = *tp;
  if (t.shape != std::vector<int64_t>{out, in})
    fail("{}: tensor {} has shape {}, expected [{}, {}]", t.file, name, t.shape_str(), out, in);
  WeightView v;
  v.dtype = t.dtype;
  v.rows = out;
  v.cols = in;
  v.ld = in;
  v.data = t.data;
  switch (t.dtype) {
    case DType::F32: case DType::BF16: case DType::F16: break;
    // GGML block types from GGUF files: the kernels read the blocks (ld in elements).
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q6_K: break;
    case DType::F8_E4M3: {
      const std::string sname = name + "_scale_inv";
      const int64_t sr = (out + 127) / 128, sc = (in + 127) / 128;
      const Tensor* s = store.find(sname);
      if (!s) fail("{}: FP8 tensor {} has no {}", t.file, name, sname);
      if (s->dtype != DType::F32) fail("{}: {} must be F32, is {}", s->file, sname, dtype_name(s->dtype));
      if (s->shape != std::vector<int64_t>{sr, sc})
        fail("{}: {} has shape {}, expected [{}, {}] (128x128 blocks of {})", s->file, sname,
             s->shape_str(), sr, sc, t.shape_str());
      v.scale_inv = static_cast<const float*>(s->data);
      v.scale_ld = sc;
      break;
    }
    default:
      fail("{}: tensor {} has dtype {}, expected a float type", t.file, name, dtype_name(t.dtype));
  }
  return v;
}

bool copy_as_f32(const Tensor& t, float* out) {
  const auto* src = static_cast<const char*>(t.data);
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::F32: std::memcpy(out, src, size_t(n) * 4); return true;
    case DType::BF16: case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, src + 2 * i, 2);
        out[i] = t.dtype == DType::BF16 ? bf16_to_f32(b) : f16_to_f32(b);
      }
      return true;
    default: return false;
  }
}

bool in_stage(const TensorSpec& t, const ModelConfig& cfg, int64_t first, int64_t last) {
  const int64_t L = cfg.num_hidden_layers;
  if (first == 0 && last == L) return true;
  if (t.mtp) return false;
  if (t.layer >= 0) return t.layer >= first && t.layer < last;
  if (t.name == "model.embed_tokens.weight") return first == 0 || (last == L && cfg.tie_word_embeddings);
  return last == L;  // the final norm and the head
}

bool in_share(const TensorSpec& t, const ExpertShare& share) {
  if (t.expert < 0 || t.mtp) return !share.only;
  return t.expert >= share.begin && (share.end < 0 || t.expert < share.end);
}

ModelWeights bind_weights(const ModelConfig& cfg, const TensorStore& store, int64_t first,
                          int64_t last, const ExpertShare& share) {
  if (last < 0) last = cfg.num_hidden_layers;
  Binder b(cfg, store);
  ModelWeights w;
  for_each_tensor(cfg, TensorOrder::Release, &w, nullptr,
                  [&](const TensorSpec& t, const TensorSlots& s) {
                    if (!in_stage(t, cfg, first, last) || !in_share(t, share)) return;
                    // The release stores the MTP copies of the shared embedding and head; a
                    // checkpoint may omit them (the walk then points them at the main ones).
                    if (!t.tied_to.empty() && !store.find(t.name)) return;
                    if (s.view) *s.view = b.linear(t.name, t.shape[0], t.shape[1]);
                    else *s.vec = b.vec(t.name, t.shape[0]);
                  });
  if (first == 0 && last == cfg.num_hidden_layers && share.whole()) b.check_all_used();
  return w;
}

namespace {

// Every linear-layer matrix with_bf16_matrices rounds, in one fixed order.
template <class W, class F>
void for_each_matrix(W& w, F&& f) {
  const auto layer = [&f](auto& lw) {
    f(lw.attn.q_a_proj), f(lw.attn.q_b_proj), f(lw.attn.q_proj);
    f(lw.attn.kv_a_proj_with_mqa), f(lw.attn.kv_b_proj), f(lw.attn.o_proj);
    const auto ffn = [&f](auto& m) { f(m.gate_proj), f(m.up_proj), f(m.down_proj); };
    ffn(lw.mlp);
    for (auto& e : lw.moe.experts) ffn(e);
    ffn(lw.moe.shared_experts);
  };
  for (auto& lw : w.layers) layer(lw);
  for (auto& m : w.mtp) {
    f(m.eh_proj);
    layer(m.block);
  }
}

}  // namespace

ModelWeights with_bf16_matrices(const ModelWeights& w, std::vector<uint16_t>& store) {
  ModelWeights out = w;
  size_t total = 0;
  for_each_matrix(out, [&](WeightView& v) {
    if (v.data && v.dtype == DType::F32) total += size_t(v.rows * v.cols);
  });
  store.resize(total);
  size_t off = 0;
  for_each_matrix(out, [&](WeightView& v) {
    if (!v.data || v.dtype != DType::F32) return;
    uint16_t* dst = store.data() + off;
    const auto* src = static_cast<const float*>(v.data);
    for (int64_t r = 0; r < v.rows; ++r)
      for (int64_t c = 0; c < v.cols; ++c) dst[r * v.cols + c] = f32_to_bf16(src[r * v.ld + c]);
    v.dtype = DType::BF16;
    v.data = dst;
    v.ld = v.cols;
    off += size_t(v.rows * v.cols);
  });
  return out;
}

}  // namespace seek::model
