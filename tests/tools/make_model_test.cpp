// make_random_model: the checkpoints it writes have exactly the tensors (names, shapes, dtypes) of
// the HF-layout fixtures, the FP8 format of the V3 release, and values that are reproducible from
// the seed and sized as documented.
#include "tools/make_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"

namespace seek::tools {
namespace {

namespace fs = std::filesystem;
using model::ModelConfig;

const std::string kModels = std::string(SEEK_FIXTURES) + "/models/";

class MakeModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("seek_make_model_{}_{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string out(const std::string& sub) const { return (dir_ / sub).string(); }
  fs::path dir_;
};

std::string dump(const ModelConfig& c) { return c.to_json().dump(); }

float bf16_at(const Tensor& t, int64_t i) {
  uint16_t b;
  std::memcpy(&b, static_cast<const uint8_t*>(t.data) + 2 * i, 2);
  return bf16_to_f32(b);
}
float f32_at(const Tensor& t, int64_t i) {
  float f;
  std::memcpy(&f, static_cast<const uint8_t*>(t.data) + 4 * i, 4);
  return f;
}
bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// ---------------------------------------------------------------------------------------------
// Presets

TEST(Presets, TinyPresetsAreTheFixtureConfigs) {
  EXPECT_EQ(dump(preset("tiny-v3")), dump(ModelConfig::load(kModels + "v3-tiny")));
  EXPECT_EQ(dump(preset("tiny-v2")), dump(ModelConfig::load(kModels + "v2-lite-tiny")));
}

TEST(Presets, ReleasedGeometries) {
  for (const std::string& name : preset_names()) EXPECT_NO_THROW(preset(name).validate(name));
  EXPECT_EQ(dump(preset("r1")), dump(preset("v3")));

  ModelConfig l = preset("v2-lite");
  EXPECT_EQ(l.model_type, "deepseek_v2");
  EXPECT_EQ(l.vocab_size, 102400);
  EXPECT_EQ(l.hidden_size, 2048);
  EXPECT_EQ(l.intermediate_size, 10944);
  EXPECT_EQ(l.moe_intermediate_size, 1408);
  EXPECT_EQ(l.num_hidden_layers, 27);
  EXPECT_EQ(l.num_attention_heads, 16);
  EXPECT_EQ(l.q_lora_rank, 0);
  EXPECT_EQ(l.kv_lora_rank, 512);
  EXPECT_EQ(l.n_routed_experts, 64);
  EXPECT_EQ(l.num_experts_per_tok, 6);
  EXPECT_EQ(l.n_shared_experts, 2);
  EXPECT_STREQ(model::hf_name(l.topk_method), "greedy");
  EXPECT_FALSE(l.norm_topk_prob);
  EXPECT_EQ(l.rope_scaling->factor, 40.0);
  EXPECT_EQ(l.rope_scaling->mscale_all_dim, 0.707);
  EXPECT_EQ(l.bos_token_id, 100000);
  EXPECT_EQ(l.eos_token_ids, std::vector<int64_t>{100001});
  EXPECT_EQ(l.num_nextn_predict_layers, 0);

  ModelConfig v2 = preset("v2");
  EXPECT_EQ(v2.hidden_size, 5120);
  EXPECT_EQ(v2.q_lora_rank, 1536);
  EXPECT_EQ(v2.n_routed_experts, 160);
  EXPECT_STREQ(model::hf_name(v2.topk_method), "group_limited_greedy");
  EXPECT_EQ(v2.n_group, 8);
  EXPECT_EQ(v2.topk_group, 3);
  EXPECT_EQ(v2.routed_scaling_factor, 16.0);

  ModelConfig v3 = preset("v3");
  EXPECT_EQ(v3.vocab_size, 129280);
  EXPECT_EQ(v3.hidden_size, 7168);
  EXPECT_EQ(v3.num_hidden_layers, 61);
  EXPECT_EQ(v3.first_k_dense_replace, 3);
  EXPECT_EQ(v3.n_routed_experts, 256);
  EXPECT_EQ(v3.num_experts_per_tok, 8);
  EXPECT_STREQ(model::hf_name(v3.scoring_func), "sigmoid");
  EXPECT_STREQ(model::hf_name(v3.topk_method), "noaux_tc");
  EXPECT_EQ(v3.routed_scaling_factor, 2.5);
  EXPECT_TRUE(v3.norm_topk_prob);
  EXPECT_EQ(v3.rope_scaling->mscale, 1.0);
  EXPECT_EQ(v3.num_nextn_predict_layers, 1);
  EXPECT_EQ(v3.eos_token_ids, std::vector<int64_t>{1});
  ASSERT_TRUE(v3.quantization_config);
  EXPECT_EQ(v3.quantization_config->quant_method, "fp8");
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    preset("v4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("v2-lite, v2, v3, r1, tiny-v2, tiny-v3"),
              std::string::npos)
        << e.what();
  }
}

// Full-size V3 geometry: counts only (nothing is generated).
TEST(CheckpointTensors, V3ReleaseCounts) {
  auto specs = checkpoint_tensors(preset("v3"), WeightFormat::FP8);
  uint64_t params = 0;
  int fp8 = 0, scales = 0;
  for (const auto& t : specs) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (t.name.ends_with("_scale_inv"))
      ++scales;
    else
      params += uint64_t(n);
    fp8 += t.dtype == DType::F8_E4M3;
  }
  EXPECT_EQ(fp8, scales);
  // 671B main model + 14B MTP module, as DeepSeek reports (685B on the hub).
  EXPECT_NEAR(double(params) / 1e9, 684.5, 0.5);
  // 3 dense layers × 20 + 58 MoE layers × 1558 + MTP 1564 + embed, norm, lm_head.
  EXPECT_EQ(specs.size(), 91991u);
}

// ---------------------------------------------------------------------------------------------
// The same tensors as the fixture checkpoints (which have the HF release layout).

struct FixtureCase {
  const char* fixture;
  WeightFormat format;
};

class FixtureGeometry : public MakeModelTest, public ::testing::WithParamInterface<FixtureCase> {};

TEST_P(FixtureGeometry, SameTensorsAsTheFixture) {
  const FixtureCase& c = GetParam();
  const std::string fixture = kModels + c.fixture;
  MakeModelOptions o;
  o.config = ModelConfig::load(fixture);
  o.format = c.format;
  o.seed = 7;
  make_random_model(o, out("m"));

  EXPECT_EQ(dump(ModelConfig::load(out("m"))), dump(o.config));
  TensorStore want = TensorStore::open(fixture), got = TensorStore::open(out("m"));
  std::map<std::string, std::pair<DType, std::vector<int64_t>>> w, g;
  for (const Tensor& t : want.tensors()) w[t.name] = {t.dtype, t.shape};
  for (const Tensor& t : got.tensors()) g[t.name] = {t.dtype, t.shape};
  for (const auto& [name, v] : w) {
    auto it = g.find(name);
    if (it == g.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    EXPECT_EQ(dtype_name(it->second.first), dtype_name(v.first)) << name;
    EXPECT_EQ(it->second.second, v.second) << name;
  }
  for (const auto& [name, v] : g) EXPECT_TRUE(w.count(name)) << "unexpected " << name;

  auto specs = checkpoint_tensors(o.config, c.format);
  EXPECT_EQ(specs.size(), w.size());
  EXPECT_EQ(got.total_bytes(), want.total_bytes());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureGeometry,
                         ::testing::Values(FixtureCase{"v3-tiny", WeightFormat::BF16},
                                           FixtureCase{"v3-tiny-fp8", WeightFormat::FP8},
                                           FixtureCase{"v2-lite-tiny", WeightFormat::BF16}),
                         [](const auto& info) {
                           std::string s = info.param.fixture;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// ---------------------------------------------------------------------------------------------
// Values

TEST_F(MakeModelTest, SameSeedSameBytesOtherSeedOtherValues) {
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::FP8}) {
    MakeModelOptions o;
    o.config = preset("tiny-v3");
    o.format = f;
    o.seed = 1;
    make_random_model(o, out("a"));
    make_random_model(o, out("b"));
    o.seed = 2;
    make_random_model(o, out("c"));
    EXPECT_EQ(read_file(out("a/model.safetensors")), read_file(out("b/model.safetensors")));
    TensorStore a = TensorStore::open(out("a")), c = TensorStore::open(out("c"));
    for (const Tensor& t : a.tensors()) {
      // MTP copies repeat the main model's tensors, as in the release; all else is its own.
      EXPECT_FALSE(same_bytes(t, c.get(t.name))) << t.name;
    }
    fs::remove_all(dir_);
  }
}

TEST_F(MakeModelTest, ValuesHaveTheDocumentedScale) {
  MakeModelOptions o;
  o.config = preset("tiny-v3");
  o.seed = 3;
  make_random_model(o, out("m"));
  TensorStore s = TensorStore::open(out("m"));
  for (const Tensor& t : s.tensors()) {
    const int64_t n = t.numel();
    if (t.name.ends_with("e_score_correction_bias")) {
      ASSERT_EQ(t.dtype, DType::F32);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_GE(f32_at(t, i), 0.0f);
        EXPECT_LT(f32_at(t, i), 0.02f);
      }
      continue;
    }
    ASSERT_EQ(t.dtype, DType::BF16) << t.name;
    double sum = 0, sq = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      float v = bf16_at(t, i);
      sum += v;
      sq += double(v) * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    double mean = sum / double(n), rms = std::sqrt(sq / double(n));
    if (t.shape.size() == 1) {  // norm gains
      EXPECT_GE(lo, 0.949f) << t.name;
      EXPECT_LE(hi, 1.051f) << t.name;
      EXPECT_LT(hi - lo, 0.11f) << t.name;
      EXPECT_GT(hi - lo, 0.0f) << t.name;
    } else {
      const bool embedding = t.name.ends_with("embed_tokens.weight");
      const double want = embedding ? 1.0 : 1.0 / std::sqrt(double(t.shape[1]));
      EXPECT_NEAR(rms, want, 0.06 * want) << t.name;
      EXPECT_NEAR(mean, 0.0, 4.0 * want / std::sqrt(double(n))) << t.name;
      EXPECT_LE(std::max(-lo, hi), 3.47 * want) << t.name;  // Irwin-Hall bound
    }
  }
  const std::string mtp = fmt::format("model.layers.{}.", o.config.num_hidden_layers);
  EXPECT_TRUE(same_bytes(s.get(mtp + "embed_tokens.weight"), s.get("model.embed_tokens.weight")));
  EXPECT_TRUE(same_bytes(s.get(mtp + "shared_head.head.weight"), s.get("lm_head.weight")));
}

// A (1-layer-ish) residual stream check without the model code: x = embed[token] after the final
// norm through lm_head gives O(1) logits that are finite and spread out.
TEST_F(MakeModelTest, LogitsOfTheEmbeddingAreOrderOne) {
  MakeModelOptions o;
  o.config = preset("tiny-v2");
  make_random_model(o, out("m"));
  TensorStore s = TensorStore::open(out("m"));
  const Tensor& emb = s.get("model.embed_tokens.weight");
  const Tensor& head = s.get("lm_head.weight");
  const int64_t H = o.config.hidden_size, V = o.config.vocab_size;
  std::vector<float> x(size_t(H), 0.0f);
  double ss = 0;
  for (int64_t j = 0; j < H; ++j) ss += std::pow(x[size_t(j)] = bf16_at(emb, 5 * H + j), 2);
  for (float& v : x) v /= float(std::sqrt(ss / double(H)));
  double lsq = 0;
  for (int64_t r = 0; r < V; ++r) {
    double l = 0;
    for (int64_t j = 0; j < H; ++j) l += double(x[size_t(j)]) * bf16_at(head, r * H + j);
    ASSERT_TRUE(std::isfinite(l));
    lsq += l * l;
  }
  EXPECT_NEAR(std::sqrt(lsq / double(V)), 1.0, 0.15);
}

// ---------------------------------------------------------------------------------------------
// FP8

// The FP8 model of a seed is the block-quantized BF16 model of that seed: FP8 weights dequantize
// to the BF16 weights within the FP8 (and BF16) rounding; all other tensors are identical bytes.
TEST_F(MakeModelTest, Fp8ModelIsTheQuantizedBf16Model) {
  MakeModelOptions o;
  o.config = ModelConfig::load(kModels + "v3-tiny-fp8");  // hidden 192: partial 2-D scale grids
  o.config.intermediate_size = 384;  // dense MLP [384, 192]: large enough to quantize in parallel
  o.seed = 11;
  o.format = WeightFormat::BF16;
  make_random_model(o, out("bf16"));
  o.format = WeightFormat::FP8;
  o.max_shard_bytes = 1 << 20;  // sharded, scales may land in another shard than the weight
  make_random_model(o, out("fp8"));
  ASSERT_TRUE(file_exists(out("fp8/model.safetensors.index.json")));
  ASSERT_TRUE(ModelConfig::load(out("fp8")).quantization_config);
  EXPECT_FALSE(ModelConfig::load(out("bf16")).quantization_config);

  TensorStore b = TensorStore::open(out("bf16")), f = TensorStore::open(out("fp8"));
  int fp8 = 0;
  for (const Tensor& t : f.tensors()) {
    if (t.name.ends_with("_scale_inv")) continue;
    const Tensor& ref = b.get(t.name);
    if (t.dtype != DType::F8_E4M3) {
      EXPECT_TRUE(same_bytes(t, ref)) << t.name;
      continue;
    }
    ++fp8;
    const Tensor& sc = f.get(t.name + "_scale_inv");
    const int64_t rows = t.shape[0], cols = t.shape[1], ncb = (cols + 127) / 128;
    ASSERT_EQ(sc.shape, (std::vector<int64_t>{(rows + 127) / 128, ncb})) << t.name;
    const auto* q = static_cast<const uint8_t*>(t.data);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const float S = f32_at(sc, (r / 128) * ncb + c / 128);
        const float deq = fp8_e4m3_to_f32(q[r * cols + c]) * S, want = bf16_at(ref, r * cols + c);
        // fp8 error ≤ |w|/16 (or S·2^-10), bf16 error ≤ |w|·2^-9.
        ASSERT_LE(std::fabs(deq - want), std::fabs(want) * (1 / 16.0f + 0x1p-8f) + S * 0x1p-10f)
            << t.name << " [" << r << ", " << c << "]";
      }
  }
  int fixture_fp8 = 0;
  const TensorStore fixture = TensorStore::open(kModels + "v3-tiny-fp8");
  for (const Tensor& t : fixture.tensors()) fixture_fp8 += t.dtype == DType::F8_E4M3;
  EXPECT_EQ(fp8, fixture_fp8);
}

// ---------------------------------------------------------------------------------------------
// Output directory

TEST_F(MakeModelTest, ShardsCopiesTokenizerAndReportsProgress) {
  fs::create_directories(out("tok"));
  write_file_atomic(out("tok/tokenizer.json"), R"({"model": {"type": "BPE"}})");
  write_file_atomic(out("tok/tokenizer_config.json"), R"({"bos_token": "<s>"})");
  MakeModelOptions o;
  o.config = preset("tiny-v2");
  o.tokenizer_dir = out("tok");
  o.max_shard_bytes = 1'000'000;
  uint64_t done = 0, total = 0;
  o.progress = [&](uint64_t d, uint64_t t) {
    EXPECT_GE(d, done);
    done = d;
    total = t;
  };
  make_random_model(o, out("m"));
  EXPECT_EQ(read_file(out("m/tokenizer.json")), read_file(out("tok/tokenizer.json")));
  EXPECT_EQ(read_file(out("m/tokenizer_config.json")), read_file(out("tok/tokenizer_config.json")));
  nlohmann::json index = parse_json(read_file(out("m/model.safetensors.index.json")), "index");
  TensorStore s = TensorStore::open(out("m"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), s.total_bytes());
  EXPECT_GE(s.files().size(), 3u);
  EXPECT_EQ(done, s.total_bytes());
  EXPECT_EQ(total, s.total_bytes());
}

TEST_F(MakeModelTest, MissingTokenizerIsAnError) {
  MakeModelOptions o;
  o.config = preset("tiny-v2");
  o.tokenizer_dir = out("nowhere");
  EXPECT_THROW(make_random_model(o, out("m")), Error);
}

}  // namespace
}  // namespace seek::tools
