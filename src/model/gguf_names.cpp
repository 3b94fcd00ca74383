#include "model/gguf_names.h"

#include <charconv>

namespace seek::model {

std::optional<std::string> gguf_name_of(std::string_view hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf.starts_with(kLayers)) return std::nullopt;
  hf.remove_prefix(kLayers.size());
  int64_t layer = 0;
  auto [end, ec] = std::from_chars(hf.data(), hf.data() + hf.size(), layer);
  if (ec != std::errc() || end == hf.data() + hf.size() || *end != '.') return std::nullopt;
  const std::string_view rest(end + 1, size_t(hf.data() + hf.size() - end - 1));
  for (const GgufLayerName& n : kGgufLayerNames)
    if (rest == n.hf) return "blk." + std::to_string(layer) + "." + n.gguf;
  return std::nullopt;
}

}  // namespace seek::model
