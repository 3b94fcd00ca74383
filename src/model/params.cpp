#include "model/params.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/safetensors.h"

namespace seek::model {

void Params::layout(const ModelConfig& cfg, const Placement& placement, bool allocate) {
  cfg_ = cfg;
  infos_.clear();
  regions_.clear();
  // Sizes per region first, then offsets: the regions in increasing order, each in walk order.
  std::map<int, size_t> region_size;
  for (TensorSpec& t : model_tensors(cfg, TensorOrder::Training)) {
    if (!t.tied_to.empty()) continue;  // MTP copies: the main tensors are the parameters
    const int region = placement ? placement(t) : 0;
    if (region < 0) continue;
    ParamInfo p;
    p.region = region;
    p.offset = region_size[region];
    p.numel = t.numel();
    p.trainable = t.trainable();
    p.decay = t.decay();
    p.spec = std::move(t);
    p.name = p.spec.name;
    p.shape = p.spec.shape;
    region_size[region] += size_t(p.numel);
    infos_.push_back(std::move(p));
  }
  std::map<int, size_t> base;
  size_ = 0;
  for (const auto& [id, n] : region_size) {
    base[id] = size_;
    regions_.push_back({id, size_, size_ + n});
    size_ += n;
  }
  for (ParamInfo& p : infos_) p.offset += base[p.region];
  if (allocate) data_.assign(size_, 0.0f);
}

Params Params::layout_only(const ModelConfig& cfg, const Placement& placement) {
  Params p;
  p.layout(cfg, placement, false);
  return p;
}

Params Params::init(const ModelConfig& cfg, double init_std, uint64_t seed, const Placement& placement) {
  Params p;
  p.layout(cfg, placement);
  std::mt19937_64 rng(seed);
  const double out_scale = 1.0 / std::sqrt(2.0 * double(cfg.num_hidden_layers + cfg.num_nextn_predict_layers));
  // Every tensor of the whole model in walk order draws from the one generator; those this
  // Params does not hold draw and drop theirs, so a part's values are the whole model's.
  const Params whole = placement ? layout_only(cfg) : Params();
  size_t k = 0;
  for (const ParamInfo& i : placement ? whole.infos_ : p.infos_) {
    const bool mine = k < p.infos_.size() && p.infos_[k].name == i.name;
    float* d = mine ? p.data_.data() + p.infos_[k++].offset : nullptr;
    if (i.shape.size() == 1) {
      if (d) std::fill_n(d, i.numel, i.trainable ? 1.0f : 0.0f);
      continue;
    }
    double sd = init_std;
    if (i.spec.residual_out) sd *= out_scale;
    std::normal_distribution<float> nd(0.0f, float(sd));
    for (int64_t j = 0; j < i.numel; ++j) {
      const float v = nd(rng);
      if (d) d[j] = v;
    }
  }
  return p;
}

namespace {

// The FP8 release (block-scaled e4m3): w[r][c] = e4m3(q[r][c]) · scale_inv[r/128][c/128], the
// scales F32 [ceil(rows/128), ceil(cols/128)] in NAME_scale_inv, as the inference loader reads.
void dequantize_fp8(const TensorStore& store, const Tensor& t, float* out) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
  const std::string sname = t.name + "_scale_inv";
  const Tensor* s = store.find(sname);
  if (!s) fail("{}: FP8 tensor {} has no {}", t.file, t.name, sname);
  if (s->dtype != DType::F32) fail("{}: {} must be F32, is {}", s->file, sname, dtype_name(s->dtype));
  if (s->shape != std::vector<int64_t>{sr, sc})
    fail("{}: {} has shape {}, expected [{}, {}] (128x128 blocks of {})", s->file, sname,
         s->shape_str(), sr, sc, t.shape_str());
  const auto* q = static_cast<const uint8_t*>(t.data);
  const auto* scale = static_cast<const float*>(s->data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = fp8_e4m3_to_f32(q[r * cols + c]) * scale[(r / 128) * sc + c / 128];
}

}  // namespace

Params Params::load(const ModelConfig& cfg, const std::string& dir, const Placement& placement) {
  Params p;
  p.layout(cfg, placement);
  TensorStore store = TensorStore::open(dir, LoadMode::Read);
  for (const ParamInfo& i : p.infos_) {
    const Tensor* t = store.find(i.name);
    if (!t) fail("{}: tensor {} is missing", dir, i.name);
    if (t->shape != i.shape) fail("{}: tensor {} has shape {}, expected {}", t->file, i.name, t->shape_str(), shape_str(i.shape));
    float* dst = p.data_.data() + i.offset;
    if (t->dtype == DType::F8_E4M3 && i.shape.size() == 2) {
      dequantize_fp8(store, *t, dst);
      continue;
    }
    if (!copy_as_f32(*t, dst))
      fail("{}: tensor {} has dtype {}; training needs F32/BF16/F16 or F8_E4M3 with its "
           "weight_scale_inv", t->file, i.name, dtype_name(t->dtype));
  }
  return p;
}

const ParamInfo* Params::find(const std::string& name) const {
  for (const ParamInfo& i : infos_)
    if (i.name == name) return &i;
  return nullptr;
}

float* Params::ptr(const std::string& name) {
  const ParamInfo* i = find(name);
  if (!i) fail("parameter {} does not exist", name);
  return data_.data() + i->offset;
}

const ParamInfo* Params::find(TensorRole role, int64_t layer) const {
  for (const ParamInfo& i : infos_)
    if (i.spec.role == role && i.spec.layer == layer) return &i;
  return nullptr;
}

// Both views follow the one tensor walk, of which infos_ is the held subsequence in its order
// (the MTP copies, which are not parameters, aside), so weights and gradients cannot disagree
// about a tensor's place.
ModelWeights Params::weights() const {
  ModelWeights w;
  size_t k = 0;
  for_each_tensor(cfg_, TensorOrder::Training, &w, nullptr,
                         [&](const TensorSpec& t, const TensorSlots& s) {
                           if (!t.tied_to.empty()) return;  // the walk points them at the main
                           const ParamInfo* i = next(k, t);
                           if (!i) return;  // not held here: empty
                           const float* d = data_.data() + i->offset;
                           if (s.view) {
                             *s.view = WeightView::f32(d, i->shape[0], i->shape[1], i->shape[1]);
                           } else {
                             s.vec->assign(d, d + i->numel);
                           }
                         });
  return w;
}

void Params::sync(ModelWeights& w) const { w = weights(); }

ModelGrads Params::grads(float* grad) const {
  ModelGrads g;
  size_t k = 0;
  for_each_tensor(cfg_, TensorOrder::Training, nullptr, &g,
                         [&](const TensorSpec& t, const TensorSlots& s) {
                           if (!t.tied_to.empty()) return;
                           const ParamInfo* i = next(k, t);
                           if (i && s.grad) *s.grad = grad + i->offset;
                         });
  return g;
}

const ParamInfo* Params::next(size_t& k, const TensorSpec& t) const {
  if (k >= infos_.size() || infos_[k].name != t.name) return nullptr;
  return &infos_[k++];
}

}  // namespace seek::model
