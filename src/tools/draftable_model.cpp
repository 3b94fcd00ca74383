#include "tools/draftable_model.h"

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/safetensors_writer.h"
#include "model/config.h"

namespace seek::tools {

void write_draftable_model(const std::string& src, const std::string& dst, float eps) {
  namespace fs = std::filesystem;
  const model::ModelConfig cfg = model::ModelConfig::load(src);
  if (cfg.num_nextn_predict_layers < 1) fail("{}: the model has no MTP module to draft with", src);
  fs::create_directories(dst);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    if (fs::exists(fs::path(src) / f))
      fs::copy_file(fs::path(src) / f, fs::path(dst) / f, fs::copy_options::overwrite_existing);
  const int64_t H = cfg.hidden_size;
  const std::string mtp = "model.layers." + std::to_string(cfg.num_hidden_layers) + ".";
  const TensorStore store = TensorStore::open(src);
  auto bf16_of = [&](const std::string& name) {
    const Tensor& t = store.get(name);
    if (t.dtype != DType::BF16) fail("{}: tensor {} is not BF16", src, name);
    const auto* v = static_cast<const uint16_t*>(t.data);
    return std::vector<uint16_t>(v, v + t.numel());
  };
  const std::vector<uint16_t> head = bf16_of(cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  const std::vector<uint16_t> norm = bf16_of("model.norm.weight");
  SafetensorsWriter w;
  std::vector<std::vector<uint16_t>> edited;  // the writer keeps pointers until write()
  edited.reserve(store.tensors().size());
  for (const Tensor& t : store.tensors()) {
    auto ends = [&](const char* s) { return t.name.ends_with(s); };
    const bool scaled = ends("o_proj.weight") || ends("down_proj.weight");
    const bool mtp_part = t.name.rfind(mtp, 0) == 0 &&
                          (ends("eh_proj.weight") || ends("enorm.weight") ||
                           ends("shared_head.norm.weight") || ends("shared_head.head.weight"));
    if (!scaled && !mtp_part) {
      w.add(t.name, t.dtype, t.shape, t.data, t.nbytes);
      continue;
    }
    std::vector<uint16_t>& x = edited.emplace_back(bf16_of(t.name));
    if (scaled) {
      for (uint16_t& e : x) e = f32_to_bf16(bf16_to_f32(e) * eps);
    } else if (ends("eh_proj.weight")) {  // [H, 2H] = [I | 0]
      for (int64_t r = 0; r < H; ++r)
        for (int64_t c = 0; c < 2 * H; ++c) x[size_t(r * 2 * H + c)] = f32_to_bf16(r == c ? 1.0f : 0.0f);
    } else if (ends("enorm.weight")) {
      for (uint16_t& e : x) e = f32_to_bf16(1.0f);
    } else if (ends("shared_head.norm.weight")) {
      x = norm;
    } else {
      x = head;
    }
    w.add(t.name, t.dtype, t.shape, x.data(), x.size() * 2);
  }
  w.write((fs::path(dst) / "model.safetensors").string());
}

}  // namespace seek::tools
