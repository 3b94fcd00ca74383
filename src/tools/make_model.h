// Random-weight DeepSeek checkpoints in exactly the Hugging Face release layout (config.json +
// safetensors with the HF tensor names, shapes and dtypes, BF16 or the V3 FP8 block format), for
// benchmarks and end-to-end tests at real geometry without downloading hundreds of GB.
//
// Values are a pure function of (seed, tensor name, element index), so generation is parallel and
// reproducible, and the FP8 model of a seed is the block-quantized BF16 model of the same seed:
//   linear [out, in]          ~ N(0, gain² / in): unit-RMS inputs give unit-RMS outputs, so with
//                               the pre-norms the residual stream and logits stay O(1) at any depth
//   embed_tokens              ~ N(0, 1): the residual stream starts at the scale layers add to it
//   norm gains                1 + U(-0.05, 0.05): near identity, yet not interchangeable
//   e_score_correction_bias   U(0, 0.02), F32: small, and positive so that sigmoid + bias > 0
//                               (where HF's 0-mask and model.py's -inf group masks agree)
// "N" is an Irwin-Hall sum of four 16-bit uniforms (mean 0, variance 1, bounded at ±3.46σ): one
// 64-bit hash per value, no transcendental functions. MTP embed_tokens / shared_head.head repeat
// model.embed_tokens / lm_head byte for byte, as the release shares them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/safetensors.h"  // ProgressFn
#include "model/config.h"

namespace seek::tools {

enum class WeightFormat {
  BF16,  // every tensor BF16 (e_score_correction_bias F32)
  FP8,   // the V3 release: *_proj under self_attn / mlp in F8_E4M3 + F32 weight_scale_inv
};

struct MakeModelOptions {
  model::ModelConfig config;
  WeightFormat format = WeightFormat::BF16;
  uint64_t seed = 0;
  double weight_gain = 1.0;                  // linear weights ~ N(0, weight_gain² / in_features)
  uint64_t max_shard_bytes = 5'000'000'000;  // HF's default max_shard_size "5GB"
  std::string tokenizer_dir;  // if set, tokenizer.json (+ tokenizer_config.json) are copied
  ProgressFn progress;        // (tensor bytes written, total)
};

// Writes OUT_DIR/config.json (quantization_config set for FP8, removed for BF16), the weights
// (model.safetensors, or shards + index above max_shard_bytes) and the tokenizer files. Creates
// OUT_DIR; files are replaced atomically.
void make_random_model(const MakeModelOptions& options, const std::string& out_dir);

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// Every tensor a Hugging Face checkpoint of this geometry holds, as released: model::model_tensors
// (Release order) with the format's dtypes, each FP8 weight followed by its weight_scale_inv.
std::vector<TensorSpec> checkpoint_tensors(const model::ModelConfig& config, WeightFormat format);

// Named geometries with their Hugging Face config values: "v2-lite", "v2", "v3", "r1" (= v3),
// and the fixture-sized "tiny-v2" (= tests/fixtures/models/v2-lite-tiny) and "tiny-v3"
// (= v3-tiny). Throws seek::Error listing the names for an unknown one.
model::ModelConfig preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace seek::tools
