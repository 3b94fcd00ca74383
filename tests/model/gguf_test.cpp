// GGUF deepseek2 export and import of every fixture model: the config survives, every weight
// comes back with the same values under its HF name (experts as views into the stacked
// tensors, kv_b_proj rebuilt from attn_k_b / attn_v_b), and the logits match the directory.
// Plus the importer's answers to files that do not fit the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "model/gguf_export.h"
#include "model/gguf_import.h"
#include "model/mtp.h"
#include "model/tensors.h"
#include "model/transformer.h"

using namespace seek;
using namespace seek::model;

namespace {

namespace fs = std::filesystem;

const std::string kFixtures = SEEK_FIXTURES "/models/";

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("seek_gguf_model_test." + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};
TempDir& temp() {
  static TempDir d;
  return d;
}

// FIXTURE exported as TYPE (with its MTP modules: `mtp`), once per test binary.
std::string exported(const std::string& fixture, DType dtype, bool mtp = false) {
  static std::map<std::string, std::string> done;
  const std::string key = fixture + "." + std::string(dtype_name(dtype)) + (mtp ? ".mtp" : "");
  if (auto it = done.find(key); it != done.end()) return it->second;
  const std::string path = (temp().path / (key + ".gguf")).string();
  LoadOptions mapped;
  mapped.mode = LoadMode::Mmap;
  auto m = Model::load(kFixtures + fixture, mapped);
  GgufWriter w;
  add_model_to_gguf(*m, dtype, fixture, w, mtp);
  w.write(path);
  return done.emplace(key, path).first->second;
}

std::vector<float> prefill_logits(const Model& m, const std::vector<int32_t>& prompt) {
  KVCache cache(m.config(), 1, 64);
  std::vector<float> logits;
  const int64_t T = int64_t(prompt.size());
  forward(m, cache, Batch{prompt, {{0, 0, T, true}}}, logits, {});
  return logits;
}

std::vector<int32_t> prompt_of(const std::string& fixture) {
  const auto ref = parse_json(read_file(kFixtures + fixture + "/reference.json"), "reference.json");
  return ref["prompt"]["token_ids"].get<std::vector<int32_t>>();
}

struct Case {
  const char* fixture;
  DType dtype;
  bool exact;         // every weight value survives (and so the logits are close to ~1e-6)
  double tolerance;   // max |logit difference| to the directory
};

class GgufRoundTrip : public testing::TestWithParam<Case> {};

TEST_P(GgufRoundTrip, ConfigSurvives) {
  const Case& c = GetParam();
  const ModelConfig want = ModelConfig::load(kFixtures + c.fixture);
  const GgufModel g = import_gguf(exported(c.fixture, c.dtype));
  const ModelConfig& got = g.config;
  EXPECT_EQ(got.model_type, want.model_type);
  for (auto f : {&ModelConfig::vocab_size, &ModelConfig::hidden_size, &ModelConfig::intermediate_size,
                 &ModelConfig::moe_intermediate_size, &ModelConfig::num_hidden_layers,
                 &ModelConfig::num_attention_heads, &ModelConfig::q_lora_rank, &ModelConfig::kv_lora_rank,
                 &ModelConfig::qk_nope_head_dim, &ModelConfig::qk_rope_head_dim, &ModelConfig::v_head_dim,
                 &ModelConfig::n_routed_experts, &ModelConfig::n_shared_experts,
                 &ModelConfig::num_experts_per_tok, &ModelConfig::first_k_dense_replace,
                 &ModelConfig::moe_layer_freq, &ModelConfig::n_group, &ModelConfig::topk_group,
                 &ModelConfig::max_position_embeddings, &ModelConfig::bos_token_id})
    EXPECT_EQ(got.*f, want.*f);
  EXPECT_EQ(got.scoring_func, want.scoring_func);
  EXPECT_EQ(got.topk_method, want.topk_method);
  EXPECT_EQ(got.norm_topk_prob, want.norm_topk_prob);
  EXPECT_EQ(got.tie_word_embeddings, want.tie_word_embeddings);
  EXPECT_EQ(got.eos_token_ids, want.eos_token_ids);
  // GGUF stores these as float32.
  EXPECT_EQ(float(got.routed_scaling_factor), float(want.routed_scaling_factor));
  EXPECT_EQ(float(got.rope_theta), float(want.rope_theta));
  EXPECT_EQ(float(got.rms_norm_eps), float(want.rms_norm_eps));
  ASSERT_EQ(got.rope_scaling.has_value(), want.rope_scaling.has_value());
  if (want.rope_scaling) {
    EXPECT_EQ(got.rope_scaling->factor, want.rope_scaling->factor);
    EXPECT_EQ(got.rope_scaling->original_max_position_embeddings,
              want.rope_scaling->original_max_position_embeddings);
    EXPECT_EQ(got.rope_scaling->mscale_all_dim, want.rope_scaling->mscale_all_dim);
    EXPECT_EQ(got.rope_scaling->mscale, want.rope_scaling->mscale);
    EXPECT_EQ(got.rope_scaling->beta_fast, want.rope_scaling->beta_fast);
    EXPECT_EQ(got.rope_freqs(), want.rope_freqs());
    EXPECT_EQ(got.softmax_scale(), want.softmax_scale());
  }
  EXPECT_EQ(got.num_nextn_predict_layers, 0);  // MTP modules are not exported
}

// Every weight the model binds (its MTP modules too if `mtp`), dequantized row by row, against
// the directory's: equal if `exact`, else within bf16 rounding.
void expect_same_weights(const Model& dir, const Model& gg, const Case& c, bool mtp) {
  ModelConfig cfg = dir.config();
  ModelWeights a = dir.weights(), b = gg.weights();
  if (!mtp) {
    cfg.num_nextn_predict_layers = 0;
    a.mtp.clear();
  }
  // Walk the same slots of both: for_each_tensor hands out the slot of each tensor in `w`.
  std::vector<std::pair<std::string, WeightView>> va, vb;
  std::vector<std::pair<std::string, std::vector<float>>> na, nb;
  for (auto [w, views, vecs] : {std::tuple{&a, &va, &na}, std::tuple{&b, &vb, &nb}})
    for_each_tensor(cfg, TensorOrder::Release, w, nullptr, [&](const TensorSpec& t, const TensorSlots& s) {
      if (s.view) views->emplace_back(t.name, *s.view);
      else vecs->emplace_back(t.name, *s.vec);
    });
  ASSERT_EQ(va.size(), vb.size());
  ASSERT_EQ(na, nb);  // norm gains and router biases: F32 both ways
  double worst = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    const auto& [name, x] = va[i];
    const WeightView& y = vb[i].second;
    ASSERT_EQ(x.rows, y.rows) << name;
    ASSERT_EQ(x.cols, y.cols) << name;
    if (name.find("mlp.experts.") != std::string::npos && c.dtype != DType::F32) {
      EXPECT_EQ(y.dtype, c.dtype) << name;
    }
    std::vector<float> rx(size_t(x.cols)), ry(size_t(x.cols));
    for (int64_t r = 0; r < x.rows; ++r) {
      kernels::dequantize_row(x, r, rx.data());
      kernels::dequantize_row(y, r, ry.data());
      if (c.exact) {
        ASSERT_EQ(rx, ry) << name << " row " << r;
      }
      for (int64_t j = 0; j < x.cols; ++j)
        worst = std::max(worst, double(std::fabs(rx[size_t(j)] - ry[size_t(j)])) /
                                    std::max(1e-3, double(std::fabs(rx[size_t(j)]))));
    }
  }
  EXPECT_LT(worst, 1.0 / 128) << "largest relative weight change";  // bf16 rounding of FP8 · scale
}

TEST_P(GgufRoundTrip, EveryWeightHasItsValues) {
  const Case& c = GetParam();
  expect_same_weights(*Model::load(kFixtures + c.fixture), *Model::load(exported(c.fixture, c.dtype)),
                      c, false);
}

TEST_P(GgufRoundTrip, LogitsMatchTheDirectory) {
  const Case& c = GetParam();
  auto dir = Model::load(kFixtures + c.fixture);
  LoadOptions read;
  read.mode = LoadMode::Read;
  auto gg = Model::load(exported(c.fixture, c.dtype), read);
  const std::vector<int32_t> prompt = prompt_of(c.fixture);
  const std::vector<float> a = prefill_logits(*dir, prompt), b = prefill_logits(*gg, prompt);
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, c.tolerance);
  const int64_t V = dir->config().vocab_size;
  for (size_t t = 0; t < prompt.size(); ++t)  // same greedy choice at every position
    EXPECT_EQ(std::max_element(a.begin() + t * V, a.begin() + (t + 1) * V) - a.begin(),
              std::max_element(b.begin() + t * V, b.begin() + (t + 1) * V) - b.begin());
  RecordProperty("max_abs_logit_diff", std::to_string(worst));
}

// The router is written F32 as llama.cpp's converter writes it; the F32 matmul accumulates in
// another order than the BF16 one, so logits agree to ~1e-6, not bit for bit (every weight
// value is exact: EveryWeightHasItsValues). FP8 weights written as BF16 are rounded
// (2^-9 relative), which moves these logits by ~0.1, the size of BF16 activations' effect.
INSTANTIATE_TEST_SUITE_P(
    Fixtures, GgufRoundTrip,
    testing::Values(Case{"v3-tiny", DType::BF16, true, 2e-5}, Case{"v3-tiny", DType::F32, true, 2e-5},
                    Case{"v3-tiny", DType::F16, false, 0.05},
                    Case{"v2-lite-tiny", DType::BF16, true, 2e-5},
                    Case{"v2-lite-tiny", DType::F32, true, 2e-5},
                    Case{"v3-tiny-fp8", DType::F32, true, 2e-5},
                    Case{"v3-tiny-fp8", DType::BF16, false, 0.15}),
    [](const auto& info) {
      std::string s = std::string(info.param.fixture) + "_" + std::string(dtype_name(info.param.dtype));
      std::replace(s.begin(), s.end(), '-', '_');
      return s;
    });

TEST(GgufExport, LlamaCppLayout) {
  const GgufFile f = GgufFile::open(exported("v3-tiny", DType::BF16));
  EXPECT_EQ(f.find("general.architecture")->s, "deepseek2");
  EXPECT_EQ(f.find("general.file_type")->i, 32);  // MOSTLY_BF16
  EXPECT_EQ(f.find("deepseek2.attention.head_count_kv")->i, 1);
  EXPECT_EQ(f.find("deepseek2.attention.key_length")->i, 64 + 16);
  EXPECT_EQ(f.find("deepseek2.attention.value_length")->i, 64);
  EXPECT_EQ(f.find("deepseek2.attention.key_length_mla")->i, 48);
  EXPECT_EQ(f.find("deepseek2.attention.value_length_mla")->i, 32);
  EXPECT_EQ(f.find("deepseek2.expert_gating_func")->i, 2);
  EXPECT_FLOAT_EQ(float(f.find("deepseek2.rope.scaling.yarn_log_multiplier")->f), 0.1f);
  std::map<std::string, const GgufTensorInfo*> t;
  for (const GgufTensorInfo& i : f.header().tensors) t[i.name] = &i;
  EXPECT_EQ(t.size(), 52u);
  EXPECT_FALSE(t.count("blk.0.attn_kv_b.weight"));
  EXPECT_FALSE(t.count("blk.3.attn_norm.weight"));  // MTP module not written
  // [n_head, kv_lora_rank, qk_nope] and [n_head, v_head, kv_lora_rank], innermost first.
  EXPECT_EQ(t["blk.0.attn_k_b.weight"]->ne, (std::vector<int64_t>{32, 64, 4}));
  EXPECT_EQ(t["blk.0.attn_v_b.weight"]->ne, (std::vector<int64_t>{64, 32, 4}));
  EXPECT_EQ(t["blk.1.ffn_gate_exps.weight"]->ne, (std::vector<int64_t>{128, 48, 16}));
  EXPECT_EQ(t["blk.1.ffn_down_exps.weight"]->ne, (std::vector<int64_t>{48, 128, 16}));
  EXPECT_EQ(t["blk.1.ffn_gate_inp.weight"]->dtype, DType::F32);
  EXPECT_EQ(t["blk.1.exp_probs_b.bias"]->dtype, DType::F32);
  EXPECT_EQ(t["blk.1.ffn_up_shexp.weight"]->dtype, DType::BF16);
  EXPECT_EQ(t["token_embd.weight"]->ne, (std::vector<int64_t>{128, 1000}));
  EXPECT_EQ(t["output.weight"]->ne, (std::vector<int64_t>{128, 1000}));
  EXPECT_EQ(t["output_norm.weight"]->dtype, DType::F32);
}

// With the MTP module asked for, it is written as llama.cpp's nextn layer (block_count counts
// it) and loads back: every weight, the module's included, has its value, and the draft's
// logits are the directory's.
TEST(GgufExport, MtpModuleIsANextnLayer) {
  const std::string path = exported("v3-tiny", DType::BF16, true);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.find("deepseek2.block_count")->i, 4);
  EXPECT_EQ(f.find("deepseek2.nextn_predict_layers")->i, 1);
  std::set<std::string> names;
  for (const GgufTensorInfo& i : f.header().tensors) names.insert(i.name);
  for (const char* n : {"blk.3.nextn.eh_proj.weight", "blk.3.nextn.enorm.weight",
                        "blk.3.nextn.hnorm.weight", "blk.3.nextn.shared_head_norm.weight",
                        "blk.3.attn_norm.weight", "blk.3.attn_k_b.weight", "blk.3.ffn_gate_exps.weight"})
    EXPECT_TRUE(names.count(n)) << n;

  auto dir = Model::load(kFixtures + "v3-tiny");
  auto gg = Model::load(path);
  EXPECT_EQ(gg->config().num_hidden_layers, 3);
  EXPECT_EQ(gg->config().num_nextn_predict_layers, 1);
  expect_same_weights(*dir, *gg, Case{"v3-tiny", DType::BF16, true, 0}, true);

  const std::vector<int32_t> prompt = prompt_of("v3-tiny");
  const int64_t T = int64_t(prompt.size());
  auto draft = [&](const Model& m) {  // module 0 at every position but the last
    KVCache cache(m.config(), 1, 64, 1);
    std::vector<float> logits, hidden, out;
    ForwardOptions fo;
    fo.last_hidden = &hidden;
    forward(m, cache, Batch{prompt, {{0, 0, T, true}}}, logits, fo);
    const std::vector<int32_t> ahead(prompt.begin() + 1, prompt.end());
    mtp_draft(m, cache, hidden.data(), Batch{ahead, {{0, 0, T - 1, true}}}, out);
    return out;
  };
  const std::vector<float> a = draft(*dir), b = draft(*gg);
  ASSERT_EQ(a.size(), size_t(dir->config().vocab_size));
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, 2e-5);  // the router in F32, as GgufRoundTrip
  EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
            std::max_element(b.begin(), b.end()) - b.begin());

  // Without the module the file is the main model only.
  const GgufFile plain = GgufFile::open(exported("v3-tiny", DType::BF16));
  EXPECT_EQ(plain.find("deepseek2.block_count")->i, 3);
  EXPECT_EQ(plain.find("deepseek2.nextn_predict_layers"), nullptr);
}

// llama.cpp needs attention.q_lora_rank unless the depth is V2-Lite's: 0 says "q_proj" for any depth.
TEST(GgufExport, QLoraRankIsWrittenWithoutQLora) {
  const GgufFile f = GgufFile::open(exported("v2-lite-tiny", DType::BF16));
  ASSERT_NE(f.find("deepseek2.attention.q_lora_rank"), nullptr);
  EXPECT_EQ(f.find("deepseek2.attention.q_lora_rank")->i, 0);
  EXPECT_EQ(GgufFile::open(exported("v3-tiny", DType::BF16)).find("deepseek2.attention.q_lora_rank")->i, 96);
  std::set<std::string> names;
  for (const GgufTensorInfo& i : f.header().tensors) names.insert(i.name);
  EXPECT_TRUE(names.count("blk.0.attn_q.weight"));
  EXPECT_FALSE(names.count("blk.0.attn_q_a.weight"));
  EXPECT_EQ(Model::load(exported("v2-lite-tiny", DType::BF16))->config().q_lora_rank, 0);
}

// ---- Files that do not fit -------------------------------------------------------------------

// Copies `src` to a new file, letting `edit` change the writer (metadata, tensors) first.
std::string rewrite(const std::string& src, const std::string& name,
                    const std::function<void(const GgufFile&, GgufWriter&)>& edit,
                    const std::set<std::string>& drop = {}) {
  const GgufFile f = GgufFile::open(src);
  GgufWriter w;
  for (const auto& [k, v] : f.header().metadata) w.set(k, v);
  for (const GgufTensorInfo& t : f.header().tensors)
    if (!drop.count(t.name)) w.add_tensor(t.name, t.dtype, t.ne, f.tensor_data(t), size_t(t.nbytes));
  edit(f, w);
  const std::string path = (temp().path / name).string();
  w.write(path);
  return path;
}

std::string load_error(const std::string& path) {
  try {
    Model::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufImport, UnsplitKvBLoadsToo) {
  // Files from before llama.cpp split kv_b_proj carry attn_kv_b as HF has it.
  auto dir = Model::load(kFixtures + std::string("v2-lite-tiny"));
  std::set<std::string> drop;
  for (int l = 0; l < 3; ++l) {
    drop.insert("blk." + std::to_string(l) + ".attn_k_b.weight");
    drop.insert("blk." + std::to_string(l) + ".attn_v_b.weight");
  }
  const std::string path = rewrite(exported("v2-lite-tiny", DType::BF16), "unsplit.gguf",
                                   [&](const GgufFile&, GgufWriter& w) {
    for (int l = 0; l < 3; ++l) {
      const Tensor& t = dir->weights_store().get("model.layers." + std::to_string(l) + ".self_attn.kv_b_proj.weight");
      w.add_tensor("blk." + std::to_string(l) + ".attn_kv_b.weight", t.dtype, {t.shape[1], t.shape[0]},
                   t.data, t.nbytes);
    }
  }, drop);
  auto gg = Model::load(path);
  const std::vector<int32_t> prompt = prompt_of("v2-lite-tiny");
  const std::vector<float> a = prefill_logits(*dir, prompt), b = prefill_logits(*gg, prompt);
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, 2e-5);
}

TEST(GgufImport, BlockTypedWeightsBecomeViewsOfTheirType) {
  // attn_output of layer 0 as Q8_0 (placeholder bytes; no product is computed here).
  const std::string path = rewrite(exported("v3-tiny", DType::BF16), "q8.gguf",
                                   [](const GgufFile&, GgufWriter& w) {
    std::vector<uint8_t> q(size_t(128 * (128 / 32) * 34), 0);
    w.add_tensor("blk.0.attn_output.weight", DType::Q8_0, {128, 128}, q.data(), q.size());
  }, {"blk.0.attn_output.weight"});
  auto m = Model::load(path);
  const WeightView& o = m->weights().layers[0].attn.o_proj;
  EXPECT_EQ(o.dtype, DType::Q8_0);
  EXPECT_EQ(o.rows, 128);
  EXPECT_EQ(o.cols, 128);
}

// llama.cpp's quantized files hold attn_k_b / attn_v_b in a block type: kv_b_proj is rebuilt
// from their dequantized values (F32), element for element.
TEST(GgufImport, QuantizedKvBHalvesAreWidened) {
  auto src = Model::load(kFixtures + std::string("v3-tiny"));
  const WeightView& kv = src->weights().layers[0].attn.kv_b_proj;  // [4·(32 + 32), 64]
  const std::string path = rewrite(exported("v3-tiny", DType::BF16), "q8kb.gguf",
                                   [&](const GgufFile&, GgufWriter& w) {
    // attn_k_b [4 heads, 64, 32]: head h, latent column c holds k row (h, i) at i.
    std::vector<uint8_t> q(size_t(4 * 64 * dtype_bytes(DType::Q8_0, 32)));
    std::vector<float> row(32);
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t c = 0; c < 64; ++c) {
        for (int64_t i = 0; i < 32; ++i) row[size_t(i)] = kv.at(h * 64 + i, c);
        kernels::quantize_row(DType::Q8_0, row.data(), q.data() + (h * 64 + c) * 34, 32);
      }
    w.add_tensor("blk.0.attn_k_b.weight", DType::Q8_0, {32, 64, 4}, q.data(), q.size());
  }, {"blk.0.attn_k_b.weight"});
  auto m = Model::load(path);
  const WeightView& got = m->weights().layers[0].attn.kv_b_proj;
  EXPECT_EQ(got.dtype, DType::F32);
  float worst = 0;
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t r = 0; r < 64; ++r)
      for (int64_t c = 0; c < 64; ++c) {
        const float want = kv.at(h * 64 + r, c), have = got.at(h * 64 + r, c);
        if (r >= 32) EXPECT_EQ(have, want);  // v rows: BF16 widened exactly
        else worst = std::max(worst, std::fabs(have - want));
      }
  EXPECT_GT(worst, 0.0f);     // the k rows went through Q8_0 ...
  EXPECT_LT(worst, 0.01f);    // ... and are close (weights ~0.02-0.1, Q8_0 steps 1/127 of a block max)
}

// Quantized exports (seek quantize). Rows that are not whole blocks (the fixtures' 48-wide
// experts; 128-wide rows for the 256-blocks of Q4_K/Q6_K) fall back to Q8_0, then F16, as
// llama.cpp's quantizer does. Two distances, as relative RMS of the logit change:
//  - the block-type kernels against the same weights dequantized to F32 (written back out by
//    export): only the activations' int8 rounding differs, ~1.5% at most positions (the median
//    is taken: at a position where two experts' scores nearly tie, that rounding flips the
//    routing, and v3-tiny's logits there move by ~0.3);
//  - the quantized model against the original: the weights' own rounding, which on these tiny
//    random models (weights that are pure noise, routing that flips) is large for 4-bit types
//    (Q4_0 ~0.4 on v3-tiny), ~0.03-0.08 for Q8_0.
struct QuantCase {
  const char* fixture;
  DType dtype;
  double max_vs_float;  // bound on the change against the original model (measured x~2)
};

class GgufQuantized : public testing::TestWithParam<QuantCase> {};

double rel_rms(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += double(got[i] - want[i]) * double(got[i] - want[i]);
    norm += double(want[i]) * double(want[i]);
  }
  return std::sqrt(diff / norm);
}

TEST_P(GgufQuantized, KernelsMatchTheDequantizedWeightsAndStayCloseToTheOriginal) {
  const QuantCase& c = GetParam();
  auto dir = Model::load(kFixtures + c.fixture);
  const std::string qpath = exported(c.fixture, c.dtype);
  auto q = Model::load(qpath);
  const std::string fpath = qpath + ".f32.gguf";
  {
    GgufWriter w;
    add_model_to_gguf(*q, DType::F32, c.fixture, w);
    w.write(fpath);
  }
  auto deq = Model::load(fpath);
  const std::vector<int32_t> prompt = prompt_of(c.fixture);
  const std::vector<float> a = prefill_logits(*dir, prompt), b = prefill_logits(*q, prompt),
                           d = prefill_logits(*deq, prompt);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(d.size(), b.size());
  const size_t V = size_t(dir->config().vocab_size);
  std::vector<double> per_position;
  for (size_t t = 0; t < prompt.size(); ++t)
    per_position.push_back(rel_rms({b.begin() + t * V, b.begin() + (t + 1) * V},
                                   {d.begin() + t * V, d.begin() + (t + 1) * V}));
  std::sort(per_position.begin(), per_position.end());
  const double kernels = per_position[per_position.size() / 2], weights = rel_rms(b, a);
  EXPECT_LT(kernels, 0.04) << "block-type kernels against the dequantized weights (median position)";
  EXPECT_GT(weights, 0.0);
  EXPECT_LT(weights, c.max_vs_float) << "quantized against the original";
  RecordProperty("rel_rms_vs_dequantized", std::to_string(kernels));
  RecordProperty("rel_rms_vs_original", std::to_string(weights));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, GgufQuantized,
    testing::Values(QuantCase{"v3-tiny", DType::Q8_0, 0.2}, QuantCase{"v3-tiny", DType::Q4_0, 1.0},
                    QuantCase{"v3-tiny-fp8", DType::Q4_K, 0.6},
                    QuantCase{"v2-lite-tiny", DType::Q6_K, 0.1},
                    QuantCase{"v2-lite-tiny", DType::Q8_0, 0.1}),
    [](const auto& info) {
      std::string s = std::string(info.param.fixture) + "_" + std::string(dtype_name(info.param.dtype));
      std::replace(s.begin(), s.end(), '-', '_');
      return s;
    });

TEST(GgufImport, MismatchesAreClearErrors) {
  const std::string src = exported("v3-tiny", DType::BF16);
  std::string e = load_error(rewrite(src, "arch.gguf", [](const GgufFile&, GgufWriter& w) {
    w.set("general.architecture", GgufValue::str("llama"));
  }));
  EXPECT_NE(e.find("general.architecture is \"llama\""), std::string::npos) << e;

  e = load_error(rewrite(src, "missing.gguf", [](const GgufFile&, GgufWriter&) {},
                         {"blk.2.ffn_up_exps.weight"}));
  EXPECT_NE(e.find("blk.2.ffn_up_exps.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;

  e = load_error(rewrite(src, "extra.gguf", [](const GgufFile&, GgufWriter& w) {
    float x[4] = {};
    w.add_tensor("blk.0.attn_sinks.weight", DType::F32, {4}, x, sizeof x);
  }));
  EXPECT_NE(e.find("unexpected tensor blk.0.attn_sinks.weight"), std::string::npos) << e;

  e = load_error(rewrite(src, "experts.gguf", [](const GgufFile&, GgufWriter& w) {
    std::vector<uint16_t> x(size_t(128 * 48 * 8));
    w.add_tensor("blk.1.ffn_gate_exps.weight", DType::BF16, {128, 48, 8}, x.data(), x.size() * 2);
  }, {"blk.1.ffn_gate_exps.weight"}));
  EXPECT_NE(e.find("blk.1.ffn_gate_exps.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[8, 48, 128]"), std::string::npos) << e;

  e = load_error(rewrite(src, "gating.gguf", [](const GgufFile&, GgufWriter& w) {
    w.set("deepseek2.expert_gating_func", GgufValue::u32(3));
  }));
  EXPECT_NE(e.find("expert_gating_func 3"), std::string::npos) << e;

  e = load_error(rewrite(src, "shape.gguf", [](const GgufFile& f, GgufWriter& w) {
    for (const GgufTensorInfo& t : f.header().tensors)
      if (t.name == "blk.0.attn_q_a.weight")
        w.add_tensor("blk.0.attn_q_a.weight", t.dtype, {96, 128}, f.tensor_data(t), size_t(t.nbytes));
  }, {"blk.0.attn_q_a.weight"}));
  EXPECT_NE(e.find("q_a_proj"), std::string::npos) << e;
  EXPECT_NE(e.find("[128, 96]"), std::string::npos) << e;
}

// The F32 router is the only difference from the BF16 directory: written as BF16 (its values
// are BF16 ones), the logits are bit-identical.
TEST(GgufImport, WithTheRouterInBf16TheLogitsAreBitIdentical) {
  for (const char* fixture : {"v3-tiny", "v2-lite-tiny"}) {
    SCOPED_TRACE(fixture);
    std::set<std::string> routers;
    const std::string src = exported(fixture, DType::BF16);
    const GgufFile exported_file = GgufFile::open(src);
    for (const GgufTensorInfo& t : exported_file.header().tensors)
      if (t.name.ends_with("ffn_gate_inp.weight")) routers.insert(t.name);
    const std::string path = rewrite(src, std::string(fixture) + ".bf16router.gguf",
                                     [&](const GgufFile& f, GgufWriter& w) {
      for (const GgufTensorInfo& t : f.header().tensors) {
        if (!routers.count(t.name)) continue;
        std::vector<uint16_t> b(size_t(t.nbytes / 4));
        for (size_t i = 0; i < b.size(); ++i) {
          float x;
          std::memcpy(&x, f.tensor_data(t) + 4 * i, 4);
          b[i] = f32_to_bf16(x);
        }
        w.add_tensor(t.name, DType::BF16, t.ne, b.data(), b.size() * 2);
      }
    }, routers);
    auto dir = Model::load(kFixtures + fixture);
    auto gg = Model::load(path);
    EXPECT_EQ(prefill_logits(*gg, prompt_of(fixture)), prefill_logits(*dir, prompt_of(fixture)));
  }
}

// Without output.weight the head is the embedding (tie_word_embeddings), as llama.cpp reads it.
TEST(GgufImport, MissingOutputTiesTheHead) {
  const std::string path =
      rewrite(exported("v3-tiny", DType::BF16), "tied.gguf", [](const GgufFile&, GgufWriter&) {}, {"output.weight"});
  auto m = Model::load(path);
  EXPECT_TRUE(m->config().tie_word_embeddings);
  EXPECT_EQ(m->weights().lm_head.data, m->weights().embed_tokens.data);
}

}  // namespace
