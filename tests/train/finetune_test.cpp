// Fine-tuning from a checkpoint, reproducibly: AdamW and clipping exactly as torch computes them,
// FP8/BF16 checkpoints loaded into float32 master weights, the raw token-file source's exact
// sequence order and its errors, and a short run from the FP8 fixture that saves FP8 and resumes
// bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/dtype.h"
#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "model/params.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/trainer.h"

using namespace seek;
using namespace seek::train;
namespace fs = std::filesystem;

namespace {

const std::string kModels = std::string(SEEK_FIXTURES) + "/models/";

std::string tmpdir(const std::string& name) {
  const std::string d = fs::temp_directory_path().string() + "/seek_finetune_test_" + name + "_" + std::to_string(getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_tokens(const std::string& path, const std::vector<uint32_t>& ids) {
  write_file_atomic(path, std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * 4));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

// Three steps on three scalars (two matrix entries with weight decay, one norm gain without),
// expected values computed by hand with torch.optim.AdamW's and clip_grad_norm_'s formulas:
// w ← w·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
// w ← w − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + ε); g first scaled by min(1, max/(‖g‖ + 1e-6)).
TEST(AdamW, MatchesTorchOnThreeHandComputedSteps) {
  model::Params p = model::Params::init(model::ModelConfig::load(kModels + "v3-tiny"), 0.02, 1);
  const model::ParamInfo* mat = p.find("model.layers.0.self_attn.o_proj.weight");
  const model::ParamInfo* gain = p.find("model.norm.weight");
  ASSERT_TRUE(mat && gain && mat->decay && !gain->decay);
  float* w = p.data().data();
  const size_t i0 = mat->offset, i1 = mat->offset + 1, i2 = gain->offset;
  w[i0] = 0.5f;
  w[i1] = -0.25f;
  w[i2] = 1.0f;
  AdamWConfig cfg;
  cfg.beta1 = 0.9;
  cfg.beta2 = 0.999;
  cfg.eps = 1e-8;
  cfg.weight_decay = 0.1;
  cfg.grad_clip = 1.0;
  AdamW opt(p, cfg);
  const float grads[3][3] = {{0.3f, -0.4f, 0.0f}, {3.0f, 4.0f, 0.0f}, {0.1f, 0.2f, -0.2f}};
  const double norms[3] = {0.5, 5.0, 0.3};  // step 2 is clipped by 1 / (5 + 1e-6)
  const double want[3][3] = {{0.395000003, -0.147500002, 1.0},
                             {0.294531801, -0.182635347, 1.0},
                             {0.208369692, -0.222374109, 1.063881354}};
  std::vector<float> g(p.size(), 0.0f);
  for (int s = 0; s < 3; ++s) {
    std::fill(g.begin(), g.end(), 0.0f);
    g[i0] = grads[s][0];
    g[i1] = grads[s][1];
    g[i2] = grads[s][2];
    EXPECT_NEAR(opt.step(p, g, 0.1), norms[s], 1e-6) << "step " << s + 1;
    EXPECT_NEAR(w[i0], want[s][0], 2e-6) << "step " << s + 1;
    EXPECT_NEAR(w[i1], want[s][1], 2e-6) << "step " << s + 1;
    EXPECT_NEAR(w[i2], want[s][2], 2e-6) << "step " << s + 1;
  }
}

// BF16 moments (V3): half the optimizer state's bytes; every stored moment is a bf16 value (the
// float32 update rounded to nearest even), and after 50 steps on a quadratic the weights are
// within 1% of the float32-moment run's; set_moments rounds what it is given the same way.
TEST(AdamW, Bf16MomentsHalveTheStateAndTrackFloat32) {
  const size_t n = 1000;
  AdamWConfig f32;
  f32.grad_clip = 0;
  AdamWConfig b16 = f32;
  b16.bf16_moments = true;
  AdamW a(n, true, f32), b(n, true, b16);
  EXPECT_EQ(a.moment_bytes(), n * 8);
  EXPECT_EQ(b.moment_bytes(), n * 4);
  std::vector<float> wa(n), wb(n), target(n);
  for (size_t i = 0; i < n; ++i) wa[i] = wb[i] = 0.01f * float(i % 17) - 0.08f, target[i] = 0.3f * std::sin(float(i));
  for (int s = 0; s < 50; ++s)
    for (auto [w, opt] : {std::pair{&wa, &a}, std::pair{&wb, &b}}) {
      std::vector<float> g(n);
      for (size_t i = 0; i < n; ++i) g[i] = (*w)[i] - target[i];  // ∇ of ½‖w − target‖²
      opt->step(w->data(), g, 0.01);
    }
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) diff = std::max(diff, double(std::fabs(wa[i] - wb[i]))), scale = std::max(scale, double(std::fabs(wa[i])));
  EXPECT_LT(diff, 0.01 * scale);
  EXPECT_GT(diff, 0.0);  // the rounding is real
  for (float x : b.m()) EXPECT_EQ(x, bf16_to_f32(f32_to_bf16(x)));
  for (float x : b.v()) EXPECT_EQ(x, bf16_to_f32(f32_to_bf16(x)));
  std::vector<float> m(n, 1.0f + 1.0f / 1024), v(n, 3.0f);
  b.set_moments(m.data(), v.data());
  EXPECT_EQ(b.m()[0], 1.0f);  // 1 + 2⁻¹⁰ is not a bf16 value: rounds to 1
  EXPECT_EQ(b.v()[5], 3.0f);
  a.set_moments(m.data(), v.data());
  EXPECT_EQ(a.m()[0], 1.0f + 1.0f / 1024);
}

// FP8 block-scaled release → float32 master weights: w = e4m3(q) · scale_inv[r/128][c/128].
TEST(ParamsLoad, Fp8AndBf16FixturesGiveTheDequantizedWeights) {
  for (const char* name : {"v3-tiny-fp8", "v2-lite-tiny"}) {
    const std::string dir = kModels + name;
    model::Params p = model::Params::load(model::ModelConfig::load(dir), dir);
    TensorStore store = TensorStore::open(dir, LoadMode::Read);
    int fp8 = 0;
    for (const model::ParamInfo& i : p.infos()) {
      const Tensor* t = store.find(i.name);
      ASSERT_TRUE(t) << i.name;
      const float* got = p.data().data() + i.offset;
      std::vector<float> want(size_t(i.numel));
      if (t->dtype == DType::F8_E4M3) {
        ++fp8;
        const Tensor* s = store.find(i.name + "_scale_inv");
        ASSERT_TRUE(s) << i.name;
        const int64_t cols = i.shape[1], sc = s->shape[1];
        const auto* q = static_cast<const uint8_t*>(t->data);
        const auto* sv = static_cast<const float*>(s->data);
        for (int64_t k = 0; k < i.numel; ++k)
          want[size_t(k)] = fp8_e4m3_to_f32(q[k]) * sv[(k / cols / 128) * sc + (k % cols) / 128];
      } else {
        ASSERT_TRUE(model::copy_as_f32(*t, want.data())) << i.name;
      }
      ASSERT_EQ(std::memcmp(got, want.data(), size_t(i.numel) * 4), 0) << name << ": " << i.name;
    }
    if (std::string(name) == "v3-tiny-fp8") {
      EXPECT_GT(fp8, 10);
    }
  }
}

// 11 tokens, seq_len 3: count = (11 − 1) / 3 = 3 sequences [0,4) [3,7) [6,10) (token 10 unused);
// batch k holds sequences (2k + j) mod 3.
TEST(TokenFile, SequentialOrderIsExact) {
  const std::string dir = tmpdir("order");
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 11; ++i) ids.push_back(100 + i);
  write_tokens(dir + "/t.bin", ids);
  Shard s = Shard::open_tokens(dir + "/t.bin", 1000);
  ASSERT_EQ(s.size(), 11);
  Loader l(s, 2, 3, /*seed=*/7, /*sequential=*/true);
  const std::vector<std::vector<int32_t>> want = {
      {100, 101, 102, 103, 103, 104, 105, 106},  // sequences 0, 1
      {106, 107, 108, 109, 100, 101, 102, 103},  // 2, 0
      {103, 104, 105, 106, 106, 107, 108, 109}}; // 1, 2
  for (const auto& w : want) {
    model::TokenBatch b = l.next();
    EXPECT_EQ(b.lengths, (std::vector<int64_t>{3, 3}));
    EXPECT_EQ(b.tokens, w);
  }
  fs::remove_all(dir);
}

TEST(TokenFile, BadFilesGetClearErrors) {
  const std::string dir = tmpdir("bad");
  EXPECT_NE(error_of([&] { Shard::open_tokens(dir + "/missing.bin", 1000); }).find("missing.bin"), std::string::npos);
  write_file_atomic(dir + "/odd.bin", std::string(10, '\0'));
  EXPECT_NE(error_of([&] { Shard::open_tokens(dir + "/odd.bin", 1000); }).find("10 bytes is not a whole number"), std::string::npos);
  write_tokens(dir + "/big.bin", {1, 2, 1000, 3});
  const std::string e = error_of([&] { Shard::open_tokens(dir + "/big.bin", 1000); });
  EXPECT_NE(e.find("big.bin: token id 1000 at position 2"), std::string::npos) << e;
  fs::remove_all(dir);
}

namespace {

// A fine-tuning config from a fixture on a token file of `n` ids.
TrainConfig finetune_config(const std::string& dir, const std::string& init, int64_t n, int64_t steps,
                            const std::string& extra = "") {
  std::vector<uint32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(uint32_t((i * 37 + 11) % 1000));
  write_tokens(dir + "/ids.bin", ids);
  write_file_atomic(dir + "/train.json", R"({
    "init": ")" + kModels + init + R"(",
    "data": {"tokens": "ids.bin", "order": "sequential"},
    "train": {"seq_len": 16, "batch_size": 2, "steps": )" + std::to_string(steps) + R"(, "lr": 1e-3,
              "schedule": "constant", "warmup": 0, "bias_update_speed": 0, "log_every": 1,
              "eval_every": 100, "save_every": 2)" + extra + R"(},
    "out": "run"
  })");
  return TrainConfig::load(dir + "/train.json");
}

std::vector<nlohmann::json> train_lines(const std::string& metrics) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(metrics));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") out.push_back(j);
  }
  return out;
}

}  // namespace

TEST(Finetune, FromTheFp8FixtureSavesFp8AndResumesBitForBit) {
  const std::string a = tmpdir("fp8a"), b = tmpdir("fp8b");
  RunOptions o;
  o.progress = false;
  TrainConfig ca = finetune_config(a, "v3-tiny-fp8", 200, 4);
  EXPECT_EQ(ca.save_dtype, "fp8");
  const std::string ckpt = run_training(ca, o);
  const auto lines = train_lines(ca.out + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& j : lines) {
    for (const char* k : {"loss", "ce", "ce_mtp", "grad_norm"}) EXPECT_TRUE(j.contains(k)) << k << ": " << j.dump();
    EXPECT_GT(j["grad_norm"].get<double>(), 0.0);
    EXPECT_EQ(j["lr"].get<double>(), 1e-3);  // constant, no warmup
    EXPECT_EQ(j["ce_mtp"].size(), 1u);
  }
  // The release format: FP8 codes with their scales, quantization_config, loadable for inference.
  const nlohmann::json cfg = nlohmann::json::parse(read_file(ckpt + "/config.json"));
  EXPECT_EQ(cfg["quantization_config"]["quant_method"], "fp8");
  TensorStore store = TensorStore::open(ckpt, LoadMode::Read);
  const std::string q = "model.layers.0.self_attn.q_a_proj.weight";
  ASSERT_TRUE(store.find(q) && store.find(q + "_scale_inv"));
  EXPECT_EQ(store.find(q)->dtype, DType::F8_E4M3);
  EXPECT_EQ(store.find("model.norm.weight")->dtype, DType::BF16);
  EXPECT_NO_THROW(model::Model::load(ckpt));
  // bias_update_speed 0: the routers' biases are the init's.
  TensorStore init = TensorStore::open(kModels + "v3-tiny-fp8", LoadMode::Read);
  const std::string bias = "model.layers.1.mlp.gate.e_score_correction_bias";
  ASSERT_TRUE(store.find(bias) && init.find(bias));
  std::vector<float> b0(16), b1(16);
  ASSERT_TRUE(model::copy_as_f32(*init.find(bias), b0.data()) && model::copy_as_f32(*store.find(bias), b1.data()));
  EXPECT_EQ(b0, b1);

  // Stopped after 1 step (an FP8 checkpoint), resumed: the same run, because the float32
  // master weights ride along in training_state.bin.
  TrainConfig cb = finetune_config(b, "v3-tiny-fp8", 200, 4);
  o.stop_after = 1;
  run_training(cb, o);
  o.stop_after = -1;
  o.resume = true;
  run_training(cb, o);
  const auto lb = train_lines(cb.out + "/metrics.jsonl");
  ASSERT_EQ(lb.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(lines[i]["loss"].dump(), lb[i]["loss"].dump()) << i;
  EXPECT_EQ(read_file(ca.out + "/final/model.safetensors"), read_file(cb.out + "/final/model.safetensors"));
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(Finetune, SaveDtypeAndBadConfigs) {
  const std::string d = tmpdir("cfg");
  RunOptions o;
  o.progress = false;
  // An FP8 init saved as BF16: no quantization_config, BF16 matrices.
  TrainConfig c = finetune_config(d, "v3-tiny-fp8", 100, 1, R"(, "save_dtype": "bf16")");
  const std::string ckpt = run_training(c, o);
  EXPECT_FALSE(nlohmann::json::parse(read_file(ckpt + "/config.json")).contains("quantization_config"));
  EXPECT_EQ(TensorStore::open(ckpt, LoadMode::Read).find("model.layers.0.self_attn.q_a_proj.weight")->dtype, DType::BF16);
  EXPECT_EQ(finetune_config(d, "v2-lite-tiny", 100, 1).save_dtype, "bf16");

  auto err = [&](const std::string& text) {
    write_file_atomic(d + "/bad.json", text);
    return error_of([&] { TrainConfig::load(d + "/bad.json"); });
  };
  const std::string init = "\"init\": \"" + kModels + "v3-tiny-fp8\"";
  std::string e = err("{" + init + R"(, "model": {"hidden_size": 64}, "data": {"tokens": "ids.bin"}, "out": "r"})");
  EXPECT_NE(e.find("field \"hidden_size\" is 64 but the init checkpoint has 192"), std::string::npos) << e;
  e = err("{" + init + R"(, "model": {"hidden_size": 192}, "data": {"tokens": "ids.bin"}, "out": "r"})");
  EXPECT_EQ(e, "(no error)");
  e = err("{" + init + R"(, "data": {"tokens": "ids.bin"}, "train": {"save_dtype": "f16"}, "out": "r"})");
  EXPECT_NE(e.find("\"save_dtype\" must be f32, bf16 or fp8"), std::string::npos) << e;
  e = err("{" + init + R"(, "data": {"tokens": "ids.bin", "order": "random"}, "out": "r"})");
  EXPECT_NE(e.find("\"order\" must be sequential or shuffled"), std::string::npos) << e;

  e = err("{" + init + R"(, "data": {"tokens": "ids.bin", "files": ["a.txt"]}, "out": "r"})");
  EXPECT_NE(e.find("\"files\" and \"tokens\" are two data sources"), std::string::npos) << e;
  e = err(R"({"model": {"hidden_size": 32}, "data": {"tokens": "ids.bin"}, "out": "r"})");
  EXPECT_NE(e.find("\"model\" needs \"vocab_size\" with a token file"), std::string::npos) << e;
  e = err(R"({"init": "nowhere", "data": {"tokens": "ids.bin"}, "out": "r"})");
  EXPECT_NE(e.find("nowhere is not a model directory (no config.json)"), std::string::npos) << e;

  // A token file shorter than one sequence (seq_len + 1 = 17 tokens).
  const std::string s = tmpdir("short");
  TrainConfig sc = finetune_config(s, "v3-tiny-fp8", 16, 1);
  e = error_of([&] { run_training(sc, o); });
  EXPECT_NE(e.find("ids.bin: 16 tokens, shorter than one training sequence (seq_len + 1 = 17"), std::string::npos) << e;
  fs::remove_all(d);
  fs::remove_all(s);
}

// A token file without "init": a random model whose "model" gives the vocabulary.
TEST(Finetune, TokenFileTrainsARandomModelOfTheGivenVocabulary) {
  const std::string d = tmpdir("scratch");
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 300; ++i) ids.push_back((i * 7) % 64);
  write_tokens(d + "/ids.bin", ids);
  write_file_atomic(d + "/train.json", R"({
    "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16,
              "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
              "max_position_embeddings": 64, "num_nextn_predict_layers": 0, "vocab_size": 64},
    "data": {"tokens": "ids.bin"},
    "train": {"seq_len": 16, "batch_size": 2, "steps": 3, "warmup": 0, "log_every": 1}, "out": "run"})");
  TrainConfig c = TrainConfig::load(d + "/train.json");
  EXPECT_TRUE(c.sequential);
  EXPECT_EQ(c.save_dtype, "f32");
  RunOptions o;
  o.progress = false;
  const std::string ckpt = run_training(c, o);
  EXPECT_EQ(train_lines(c.out + "/metrics.jsonl").size(), 3u);
  EXPECT_EQ(model::Model::load(ckpt)->config().vocab_size, 64);
  EXPECT_EQ(TensorStore::open(ckpt, LoadMode::Read).find("lm_head.weight")->dtype, DType::F32);
  fs::remove_all(d);
}
