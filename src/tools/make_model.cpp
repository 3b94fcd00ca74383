#include "tools/make_model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors_writer.h"
#include "kernels/fp8.h"
#include "model/tensors.h"

namespace seek::tools {

using model::ModelConfig;

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Values: element i of tensor T is a function of (seed, T, i) only.

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// splitmix64's output function: a bijective 64-bit mix.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The splitmix64 sequence of one tensor, addressable at any index (so any thread can produce any
// range, and the bytes do not depend on the thread count).
struct Stream {
  uint64_t key;
  Stream(uint64_t seed, std::string_view name) : key(mix64(fnv1a(name) ^ mix64(seed))) {}
  uint64_t bits(uint64_t i) const { return mix64(key + (i + 1) * kGolden); }
  // Irwin-Hall: the sum of four uniforms on [0, 65535] has mean 2·65535 and variance
  // 4·(65536² − 1)/12; standardised it is close to N(0, 1), bounded at ±sqrt(12) ≈ ±3.46.
  float normal(uint64_t i) const {
    uint64_t r = bits(i);
    uint32_t sum = uint32_t(r & 0xffff) + uint32_t((r >> 16) & 0xffff) +
                   uint32_t((r >> 32) & 0xffff) + uint32_t(r >> 48);
    constexpr float kInvStd = 2.6428998e-5f;  // 1 / sqrt(4 · (65536² − 1) / 12)
    return (float(sum) - 131070.0f) * kInvStd;
  }
  float uniform(uint64_t i) const { return float(bits(i) >> 40) * 0x1p-24f; }  // [0, 1)
};

constexpr int64_t kParallelMin = 1 << 16;  // elements worth a parallel region

template <typename F>
void fill_bf16(uint8_t* dst, int64_t n, F value) {
  auto* out = reinterpret_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(value(uint64_t(i)));
}

// ---------------------------------------------------------------------------------------------
// FP8 (float8_e4m3fn) block quantization.

constexpr int64_t kBlock = 128;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Generates W [rows, cols] ~ std · N(0, 1) one 128-row block at a time (so the float copy never
// exceeds 128 rows) and quantizes it.
void fill_fp8(const Stream& stream, float std, int64_t rows, int64_t cols, uint8_t* codes,
              float* scale_inv) {
  const int64_t nrb = ceil_div(rows, kBlock), ncb = ceil_div(cols, kBlock);
  // Small tensors stay on one thread: a parallel region costs more than they do, a lot more when
  // the cores are busy with other work (the barrier waits for a descheduled thread).
#pragma omp parallel if (nrb > 1 && rows * cols >= kParallelMin)
  {
    std::vector<float> buf(size_t(std::min(rows, kBlock) * cols));
#pragma omp for schedule(dynamic)
    for (int64_t rb = 0; rb < nrb; ++rb) {
      const int64_t r0 = rb * kBlock, nr = std::min(kBlock, rows - r0);
      for (int64_t i = 0; i < nr * cols; ++i)
        buf[size_t(i)] = std * stream.normal(uint64_t(r0 * cols + i));
      kernels::quantize_fp8_blocks(buf.data(), nr, cols, codes + r0 * cols, scale_inv + rb * ncb);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The checkpoint's tensors and how each is initialised.

enum class Init { Linear, Embedding, Norm, RouterBias, Scale };

struct Recipe {
  TensorSpec spec;
  Init init;
  int64_t fan_in = 0;  // Linear
  std::string source;  // the tensor whose values this one has (itself, or the one it copies)
};

// The tensors of model::model_tensors (Release order), each FP8 weight followed by its scale
// (whose fill reads what the weight's fill computed).
std::vector<Recipe> recipes(const ModelConfig& c, WeightFormat format) {
  std::vector<Recipe> out;
  std::map<std::string, size_t> index;  // name → its recipe in `out`
  for (const model::TensorSpec& t : model::model_tensors(c, model::TensorOrder::Release)) {
    if (!t.tied_to.empty()) {  // an MTP copy of the shared embedding / head: the same values
      Recipe r = out[index.at(t.tied_to)];
      r.spec.name = t.name;
      index[t.name] = out.size();
      out.push_back(std::move(r));
      continue;
    }
    Recipe r{TensorSpec{t.name, DType::BF16, t.shape}, Init::Linear, t.fan_in(), t.name};
    switch (t.role) {
      case model::TensorRole::Embedding: r.init = Init::Embedding; r.fan_in = 0; break;
      case model::TensorRole::Norm: r.init = Init::Norm; break;
      case model::TensorRole::RouterBias:
        r.init = Init::RouterBias;
        r.spec.dtype = DType::F32;
        break;
      case model::TensorRole::Head: case model::TensorRole::Linear: case model::TensorRole::Router:
        break;  // BF16 except the *_proj the FP8 release quantizes
    }
    const bool fp8 = format == WeightFormat::FP8 && t.fp8;
    if (fp8) r.spec.dtype = DType::F8_E4M3;
    index[t.name] = out.size();
    out.push_back(std::move(r));
    if (fp8)
      out.push_back(Recipe{TensorSpec{t.name + "_scale_inv", DType::F32,
                                      {ceil_div(t.shape[0], kBlock), ceil_div(t.shape[1], kBlock)}},
                           Init::Scale, 0, t.name + "_scale_inv"});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Presets: the released config.json values.

model::RopeScaling yarn(double factor, int64_t original, double mscale) {
  model::RopeScaling y;
  y.type = "yarn";
  y.factor = factor;
  y.original_max_position_embeddings = original;
  y.beta_fast = 32.0;
  y.beta_slow = 1.0;
  y.mscale = y.mscale_all_dim = mscale;
  return y;
}

// Shared by every DeepSeek MLA geometry: d_h 128, d_R 64, d_v 128, d_c 512, YaRN ×40 over 4k.
ModelConfig deepseek_base(const std::string& model_type) {
  ModelConfig c;
  c.model_type = model_type;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.moe_layer_freq = 1;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 163840;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = false;
  return c;
}

ModelConfig preset_v2_lite() {  // deepseek-ai/DeepSeek-V2-Lite
  ModelConfig c = deepseek_base("deepseek_v2");
  c.vocab_size = 102400;
  c.hidden_size = 2048;
  c.intermediate_size = 10944;
  c.moe_intermediate_size = 1408;
  c.num_hidden_layers = 27;
  c.num_attention_heads = 16;
  c.q_lora_rank = 0;
  c.n_routed_experts = 64;
  c.num_experts_per_tok = 6;
  c.n_shared_experts = 2;
  c.first_k_dense_replace = 1;
  c.scoring_func = model::ScoringFunc::Softmax;
  c.topk_method = model::TopkMethod::Greedy;
  c.n_group = 1;
  c.topk_group = 1;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  c.rope_scaling = yarn(40.0, 4096, 0.707);
  c.bos_token_id = 100000;
  c.eos_token_ids = {100001};
  return c;
}

// The full V2 shares V2-Lite's vocabulary, routing (6 of the routed + 2 shared experts, softmax,
// first layer dense), YaRN and special tokens.
ModelConfig preset_v2() {  // deepseek-ai/DeepSeek-V2 (236B)
  ModelConfig c = preset_v2_lite();
  c.hidden_size = 5120;
  c.intermediate_size = 12288;
  c.moe_intermediate_size = 1536;
  c.num_hidden_layers = 60;
  c.num_attention_heads = 128;
  c.q_lora_rank = 1536;
  c.n_routed_experts = 160;
  c.topk_method = model::TopkMethod::GroupLimitedGreedy;
  c.n_group = 8;
  c.topk_group = 3;
  c.routed_scaling_factor = 16.0;
  return c;
}

ModelConfig preset_v3() {  // deepseek-ai/DeepSeek-V3 (and R1: same config.json)
  ModelConfig c = deepseek_base("deepseek_v3");
  c.vocab_size = 129280;
  c.hidden_size = 7168;
  c.intermediate_size = 18432;
  c.moe_intermediate_size = 2048;
  c.num_hidden_layers = 61;
  c.num_attention_heads = 128;
  c.q_lora_rank = 1536;
  c.n_routed_experts = 256;
  c.num_experts_per_tok = 8;
  c.n_shared_experts = 1;
  c.first_k_dense_replace = 3;
  c.scoring_func = model::ScoringFunc::Sigmoid;
  c.topk_method = model::TopkMethod::NoauxTc;
  c.n_group = 8;
  c.topk_group = 4;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.rope_scaling = yarn(40.0, 4096, 1.0);
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  c.num_nextn_predict_layers = 1;
  c.quantization_config = model::QuantizationConfig{"fp8", "e4m3", "dynamic", 128, 128};
  return c;
}

// The fixture geometries (tests/fixtures/models/*/config.json), small enough for unit tests.
ModelConfig preset_tiny_v2() {
  ModelConfig c = preset_v2_lite();
  c.vocab_size = 1000;
  c.hidden_size = 192;
  c.intermediate_size = 256;
  c.moe_intermediate_size = 48;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 24;
  c.n_routed_experts = 16;
  c.num_experts_per_tok = 4;
  c.rope_scaling.reset();
  c.max_position_embeddings = 2048;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  return c;
}

ModelConfig preset_tiny_v3() {
  ModelConfig c = preset_v3();
  c.vocab_size = 1000;
  c.hidden_size = 128;
  c.intermediate_size = 320;
  c.moe_intermediate_size = 48;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.q_lora_rank = 96;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 16;
  c.num_experts_per_tok = 4;
  c.first_k_dense_replace = 1;
  c.n_group = 4;
  c.topk_group = 2;
  c.rope_scaling = yarn(4.0, 256, 1.0);
  c.max_position_embeddings = 1024;
  c.quantization_config.reset();
  return c;
}

struct Preset {
  const char* name;
  ModelConfig (*make)();
};
constexpr Preset kPresets[] = {{"v2-lite", preset_v2_lite}, {"v2", preset_v2},
                               {"v3", preset_v3},           {"r1", preset_v3},
                               {"tiny-v2", preset_tiny_v2}, {"tiny-v3", preset_tiny_v3}};

}  // namespace

std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& config, WeightFormat format) {
  std::vector<TensorSpec> out;
  for (Recipe& r : recipes(config, format)) out.push_back(std::move(r.spec));
  return out;
}

model::ModelConfig preset(const std::string& name) {
  for (const Preset& p : kPresets)
    if (name == p.name) return p.make();
  std::string names;
  for (const Preset& p : kPresets) names += (names.empty() ? "" : ", ") + std::string(p.name);
  fail("unknown model preset \"{}\" (known: {})", name, names);
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

void make_random_model(const MakeModelOptions& options, const std::string& out_dir) {
  ModelConfig cfg = options.config;
  if (options.format == WeightFormat::FP8)
    cfg.quantization_config = model::QuantizationConfig{"fp8", "e4m3", "dynamic", kBlock, kBlock};
  else
    cfg.quantization_config.reset();
  cfg.validate("make-model config");

  SafetensorsWriter writer;
  // Scales of the FP8 weight just filled, handed to its weight_scale_inv (always next in order:
  // the writer fills in the order tensors are added).
  auto scales = std::make_shared<std::vector<float>>();
  for (const Recipe& r : recipes(cfg, options.format)) {
    const Stream stream(options.seed, r.source);
    const std::vector<int64_t>& shape = r.spec.shape;
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    SafetensorsWriter::FillFn fill;
    switch (r.init) {
      case Init::Linear: {
        const float std = float(options.weight_gain / std::sqrt(double(r.fan_in)));
        if (r.spec.dtype == DType::F8_E4M3) {
          fill = [stream, std, shape, scales](uint8_t* dst) {
            scales->assign(size_t(ceil_div(shape[0], kBlock) * ceil_div(shape[1], kBlock)), 0.0f);
            fill_fp8(stream, std, shape[0], shape[1], dst, scales->data());
          };
        } else {
          fill = [stream, std, numel](uint8_t* dst) {
            fill_bf16(dst, numel, [&](uint64_t i) { return std * stream.normal(i); });
          };
        }
        break;
      }
      case Init::Embedding:
        fill = [stream, numel](uint8_t* dst) {
          fill_bf16(dst, numel, [&](uint64_t i) { return stream.normal(i); });
        };
        break;
      case Init::Norm:
        fill = [stream, numel](uint8_t* dst) {
          fill_bf16(dst, numel,
                    [&](uint64_t i) { return 1.0f + 0.1f * (stream.uniform(i) - 0.5f); });
        };
        break;
      case Init::RouterBias:
        fill = [stream, numel](uint8_t* dst) {
          for (int64_t i = 0; i < numel; ++i) {
            float v = 0.02f * stream.uniform(uint64_t(i));
            std::memcpy(dst + 4 * i, &v, 4);
          }
        };
        break;
      case Init::Scale:
        fill = [scales, name = r.spec.name, numel](uint8_t* dst) {
          if (scales->size() != size_t(numel)) fail("{}: filled before its FP8 weight", name);
          std::memcpy(dst, scales->data(), size_t(numel) * 4);
          scales->clear();
        };
        break;
    }
    writer.add_lazy(r.spec.name, r.spec.dtype, shape, std::move(fill));
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail("cannot create directory {}: {}", out_dir, ec.message());
  writer.write_sharded(out_dir, options.max_shard_bytes, options.progress);
  // config.json last: a directory with a config has its weights.
  write_file_atomic((fs::path(out_dir) / "config.json").string(), cfg.to_json().dump(2) + "\n");

  if (!options.tokenizer_dir.empty()) {
    const fs::path from(options.tokenizer_dir), to(out_dir);
    write_file_atomic((to / "tokenizer.json").string(),
                      read_file((from / "tokenizer.json").string()));
    if (file_exists((from / "tokenizer_config.json").string()))
      write_file_atomic((to / "tokenizer_config.json").string(),
                        read_file((from / "tokenizer_config.json").string()));
  }
}

}  // namespace seek::tools
