// The reward model (`seek rm`): the Bradley–Terry head's gradient against finite differences;
// on a tiny random model and synthetic pairs whose chosen side always holds a marker ("#") and
// whose rejected side never does, a short run (24 steps of 8 pairs) learns to prefer the marker on held-out pairs; the
// checkpoint loads again with identical scores, resumes exactly and serves as the "rm" reward;
// bad records and configs get errors naming the line or field.
#include "rl/reward_model.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "model/params.h"
#include "model/transformer.h"
#include "rl/rewards.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/checkpoint.h"

using namespace seek;
using namespace seek::rl;
namespace fs = std::filesystem;

namespace {

std::string tmpdir(const std::string& name) {
  const std::string d = fs::temp_directory_path().string() + "/seek_rm_test_" + name + "_" +
                        std::to_string(getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Σ_k −log σ(r_2k − r_2k+1) in double, straight from the definition.
double bt_reference(const std::vector<float>& xn, int64_t H, const std::vector<int64_t>& last,
                    const std::vector<float>& w) {
  double loss = 0.0;
  for (size_t k = 0; k < last.size(); k += 2) {
    double rc = 0.0, rr = 0.0;
    for (int64_t h = 0; h < H; ++h) {
      rc += double(w[size_t(h)]) * xn[size_t(last[k] * H + h)];
      rr += double(w[size_t(h)]) * xn[size_t(last[k + 1] * H + h)];
    }
    loss += -std::log(1.0 / (1.0 + std::exp(-(rc - rr))));
  }
  return loss;
}

// A random string of letters a–h, and the same with the marker "#" at a random place.
std::string letters(std::mt19937_64& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char('a' + rng() % 8);
  return s;
}

std::string pair_line(std::mt19937_64& rng) {
  std::string chosen = letters(rng, 6), rejected = letters(rng, 7);
  chosen.insert(rng() % 7, "#");
  nlohmann::json j = {{"prompt", "pick " + letters(rng, 3)}, {"chosen", chosen}, {"rejected", rejected}};
  return j.dump() + "\n";
}

// A tiny random DeepSeek model (MoE, no MTP) with a 300-id byte-level BPE tokenizer and
// DeepSeek-V3's chat template, saved as a checkpoint; plus pair files and a 24-step config.
struct Fixture {
  std::string dir, model, config;
  Fixture() {
    dir = tmpdir("fixture");
    std::mt19937_64 rng(3);
    std::string corpus;
    for (int i = 0; i < 200; ++i) corpus += "pick " + letters(rng, 3) + " " + letters(rng, 7) + " #\n";
    const train::BpeResult bpe = train::train_bpe({corpus}, 300, train::kDeepSeekV3ChatTemplate);
    fs::create_directories(dir + "/tok");
    write_file_atomic(dir + "/tok/tokenizer.json", bpe.tokenizer.dump());
    write_file_atomic(dir + "/tok/tokenizer_config.json", bpe.tokenizer_config.dump());
    nlohmann::json mj = nlohmann::json::parse(R"({
      "model_type": "deepseek_v3", "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 1,
      "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
      "num_hidden_layers": 2, "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16,
      "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
      "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
      "first_k_dense_replace": 1, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
      "n_group": 2, "topk_group": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
      "max_position_embeddings": 64, "num_nextn_predict_layers": 0})");
    mj["vocab_size"] = bpe.vocab_size;
    const model::ModelConfig mc = model::ModelConfig::from_json(mj, "test model");
    train::save_checkpoint(dir, "base", model::Params::init(mc, 0.02, 7), {}, dir + "/tok", {}, 0);
    model = dir + "/base";
    std::string train, val;
    for (int i = 0; i < 160; ++i) train += pair_line(rng);
    for (int i = 0; i < 40; ++i) val += pair_line(rng);
    write_file_atomic(dir + "/pairs.jsonl", train);
    write_file_atomic(dir + "/val.jsonl", val);
    config = R"({
      // tiny reward model
      "init": "base",
      "data": {"pairs": "pairs.jsonl", "val": "val.jsonl"},
      "train": {"batch_size": 8, "steps": 24, "lr": 3e-3, "schedule": "constant", "warmup": 4, "seed": 5, "log_every": 1,
                "eval_every": 12, "save_every": 12, "bias_update_speed": 0.01},
      "out": "run"
    })";
  }
  ~Fixture() { fs::remove_all(dir); }
  RmConfig load(const std::string& out, const std::string& name = "rm.json") const {
    std::string text = config;
    text.replace(text.find("\"run\""), 5, "\"" + out + "\"");
    write_file_atomic(dir + "/" + name, text);
    return RmConfig::load(dir + "/" + name);
  }
};

// On one OpenMP thread (a model this small is all parallel-region overhead, worst on a loaded
// machine), restoring the count after: "threads" in a config sets it for the process.
std::string train_rm(RmConfig c, const train::RunOptions& o) {
  const int threads = omp_get_max_threads();
  c.threads = 1;
  try {
    std::string out = run_reward_model_training(c, o);
    omp_set_num_threads(threads);
    return out;
  } catch (...) {
    omp_set_num_threads(threads);
    throw;
  }
}

train::RunOptions quiet(int64_t stop_after = -1) {
  train::RunOptions o;
  o.progress = false;
  o.stop_after = stop_after;
  return o;
}

std::vector<nlohmann::json> records(const std::string& metrics, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(metrics));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

// One trained run shared by the tests below (built on first use).
class RewardModelRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fx_ = new Fixture();
    final_ = train_rm(fx_->load("run"), quiet());
  }
  static void TearDownTestSuite() {
    delete fx_;
    fx_ = nullptr;
  }
  static Fixture* fx_;
  static std::string final_;
};
Fixture* RewardModelRun::fx_ = nullptr;
std::string RewardModelRun::final_;

}  // namespace

TEST(BradleyTerry, HeadGradientMatchesFiniteDifferences) {
  const int64_t T = 7, H = 5;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> xn(static_cast<size_t>(T * H)), w(static_cast<size_t>(H));
  for (float& x : xn) x = nd(rng);
  for (float& x : w) x = nd(rng);
  const std::vector<int64_t> last = {2, 3, 6, 0};  // two pairs; rows 1, 4, 5 are not scored
  const double scale = 0.5;
  std::vector<float> dxn(xn.size(), 0.0f), dw(w.size(), 0.0f);
  std::vector<double> r;
  const double loss = bradley_terry(xn.data(), H, last, w.data(), scale, dxn.data(), dw.data(), &r);
  EXPECT_NEAR(loss, scale * bt_reference(xn, H, last, w), 1e-12);
  ASSERT_EQ(r.size(), 4u);
  const double eps = 1e-3;
  for (int64_t h = 0; h < H; ++h) {
    std::vector<float> wp = w, wm = w;
    wp[size_t(h)] += float(eps);
    wm[size_t(h)] -= float(eps);
    const double num = scale * (bt_reference(xn, H, last, wp) - bt_reference(xn, H, last, wm)) /
                       double(wp[size_t(h)] - wm[size_t(h)]);
    EXPECT_NEAR(dw[size_t(h)], num, 1e-5 * std::max(1.0, std::fabs(num))) << "w[" << h << "]";
  }
  for (int64_t i = 0; i < T * H; ++i) {
    std::vector<float> xp = xn, xm = xn;
    xp[size_t(i)] += float(eps);
    xm[size_t(i)] -= float(eps);
    const double num = scale * (bt_reference(xp, H, last, w) - bt_reference(xm, H, last, w)) /
                       double(xp[size_t(i)] - xm[size_t(i)]);
    EXPECT_NEAR(dxn[size_t(i)], num, 1e-5 * std::max(1.0, std::fabs(num))) << "xn[" << i << "]";
    if (i / H == 1 || i / H == 4 || i / H == 5) {
      EXPECT_EQ(dxn[size_t(i)], 0.0f);
    }
  }
  // Extreme margins neither overflow nor lose the gradient's sign.
  std::vector<float> big = xn;
  for (float& x : big) x *= 1e4f;
  std::fill(dw.begin(), dw.end(), 0.0f);
  EXPECT_TRUE(std::isfinite(bradley_terry(big.data(), H, last, w.data(), 1.0, nullptr, nullptr)));
}

TEST_F(RewardModelRun, LearnsToPreferTheMarkerOnHeldOutPairs) {
  EXPECT_EQ(final_, fx_->dir + "/run/final");
  const auto val = records(fx_->dir + "/run/metrics.jsonl", "val");
  ASSERT_EQ(val.size(), 2u);  // steps 12 and 24 (the end)
  EXPECT_EQ(val.back()["step"], 24);
  EXPECT_EQ(val.back()["pairs"], 40);
  // Chance is 0.5 and log 2 = 0.693: the model must have found the marker.
  EXPECT_GE(val.back()["accuracy"].get<double>(), 0.9) << val.back().dump();
  EXPECT_LT(val.back()["val_loss"].get<double>(), 0.5) << val.back().dump();
  const auto train = records(fx_->dir + "/run/metrics.jsonl", "train");
  ASSERT_EQ(train.size(), 24u);
  EXPECT_GT(train.front()["loss"].get<double>(), 0.6);
  for (const char* k : {"loss", "accuracy", "margin", "lr", "grad_norm", "moe"}) EXPECT_TRUE(train.back().contains(k)) << k;
  const std::string html = read_file(fx_->dir + "/run/report.html");
  EXPECT_NE(html.find("Pairwise accuracy"), std::string::npos);
}

TEST_F(RewardModelRun, CheckpointLoadsWithIdenticalScoresAndRunsAsALanguageModel) {
  // score.weight [1, H] sits beside the model's tensors, F32, in HF form.
  const TensorStore store = TensorStore::open(final_);
  const Tensor* head = store.find("score.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{1, 32}));
  EXPECT_EQ(head->dtype, DType::F32);
  EXPECT_EQ(store.find("score.bias"), nullptr);
  // The score never reads the LM head: it is left as loaded (no gradient, so no decay either),
  // while the layers below the score did train.
  const TensorStore base = TensorStore::open(fx_->model);
  auto bytes = [](const TensorStore& st, const std::string& name) {
    const Tensor* t = st.find(name);
    return t ? std::string(static_cast<const char*>(t->data), t->nbytes) : std::string();
  };
  EXPECT_TRUE(bytes(store, "lm_head.weight") == bytes(base, "lm_head.weight"));
  EXPECT_FALSE(bytes(store, "model.layers.1.self_attn.o_proj.weight") ==
               bytes(base, "model.layers.1.self_attn.o_proj.weight"));
  EXPECT_FALSE(bytes(store, "model.norm.weight") == bytes(base, "model.norm.weight"));
  // The loaded model reproduces the in-training evaluation of the held-out pairs exactly.
  const auto rm = RewardModel::load(final_);
  const std::vector<PreferencePair> pairs = load_pairs(fx_->dir + "/val.jsonl");
  std::vector<std::vector<int32_t>> seqs;
  for (const PreferencePair& p : pairs) {
    seqs.push_back(rm->render(p.messages, p.chosen));
    seqs.push_back(rm->render(p.messages, p.rejected));
  }
  const std::vector<double> r = rm->score(seqs);
  double loss = 0.0;
  for (size_t k = 0; k < r.size(); k += 2) loss += std::log1p(std::exp(-(r[k] - r[k + 1])));
  const auto val = records(fx_->dir + "/run/metrics.jsonl", "val");
  EXPECT_NEAR(loss / double(pairs.size()), val.back()["val_loss"].get<double>(), 1e-12);
  // A sequence scored alone gets its score in the batch, up to the float GEMMs' blocking.
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(rm->score(std::span(&seqs[i], 1))[0], r[i], 1e-5);
  // The inference loader takes the checkpoint (the head rides along unused).
  EXPECT_NO_THROW(model::Model::load(final_));
}

TEST_F(RewardModelRun, RmRewardScoresChosenAboveRejected) {
  const auto reward = make_reward({{"name", "rm"}, {"model", final_}});
  const auto doubled = make_reward({{"name", "rm"}, {"model", final_}, {"weight", 2.0}});
  EXPECT_EQ(reward->name(), "rm");
  const std::vector<PreferencePair> pairs = load_pairs(fx_->dir + "/val.jsonl");
  const nlohmann::json none = nlohmann::json::object();
  std::vector<std::string> prompts;
  for (const PreferencePair& p : pairs) prompts.push_back(p.messages[0]["content"]);
  std::vector<RewardInput> in;
  for (size_t i = 0; i < pairs.size(); ++i) {
    in.push_back({prompts[i], pairs[i].chosen, none});
    in.push_back({prompts[i], pairs[i].rejected, none});
  }
  const std::vector<RewardResult> batch = reward->score_batch(in);
  ASSERT_EQ(batch.size(), in.size());
  int better = 0;
  for (size_t k = 0; k < batch.size(); k += 2) better += batch[k].reward > batch[k + 1].reward;
  EXPECT_GE(better, 36) << "of 40";
  // One at a time, in a sum, and weighted: the same raw score; the reason says it.
  const RewardResult one = reward->score(in[0]);
  EXPECT_NEAR(one.reward, batch[0].reward, 1e-5);
  EXPECT_FALSE(one.correct);
  EXPECT_EQ(one.reason, fmt::format("reward model score {:.4f}", one.reward));
  EXPECT_DOUBLE_EQ(doubled->score(in[0]).reward, 2.0 * one.reward);
  nlohmann::json term = nlohmann::json::object();
  term["reward"] = {{"name", "rm"}, {"model", final_}};
  term["weight"] = 0.5;
  nlohmann::json sum_config = {{"name", "sum"}};
  sum_config["terms"] = nlohmann::json::array({term});
  const auto sum = make_reward(sum_config);
  EXPECT_NEAR(sum->score_batch(std::span(in).first(2))[1].reward, 0.5 * batch[1].reward, 1e-5);
  // A plain language model is not a reward model.
  EXPECT_NE(error_of([&] { make_reward({{"name", "rm"}, {"model", fx_->model}}); }).find("no tensor score.weight"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { make_reward({{"name", "rm"}}); }),
            "reward \"rm\": field \"model\" (the `seek rm` checkpoint directory) is missing or not a string");
}

TEST_F(RewardModelRun, ResumesExactly) {
  const RmConfig c = fx_->load("resumed", "resumed.json");
  train_rm(c, quiet(7));  // stops at step 7, checkpoint step-000007
  EXPECT_NE(error_of([&] { train_rm(c, quiet()); }).find("--resume"), std::string::npos);
  train::RunOptions o = quiet();
  o.resume = true;
  EXPECT_EQ(train_rm(c, o), fx_->dir + "/resumed/final");
  EXPECT_EQ(read_file(fx_->dir + "/resumed/final/model.safetensors"), read_file(final_ + "/model.safetensors"));
  const auto a = records(fx_->dir + "/run/metrics.jsonl", "train");
  const auto b = records(fx_->dir + "/resumed/metrics.jsonl", "train");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"].dump(), b[i]["loss"].dump()) << "step " << i + 1;
}

TEST(PreferencePairs, BadRecordsNameTheLine) {
  const std::string dir = tmpdir("pairs");
  const std::string good = R"({"prompt": "q", "chosen": "a", "rejected": "b"})";
  auto error_at = [&](const std::string& bad) {
    write_file_atomic(dir + "/p.jsonl", good + "\n\n" + bad + "\n" + good + "\n");
    return error_of([&] { load_pairs(dir + "/p.jsonl"); });
  };
  const std::string at = dir + "/p.jsonl:3: ";
  EXPECT_EQ(error_at(R"({"prompt": "q", "chosen": "a"})"), at + "missing field \"rejected\" (a string)");
  EXPECT_EQ(error_at(R"({"chosen": "a", "rejected": "b"})"),
            at + "missing field \"prompt\" (a string or a list of {role, content})");
  EXPECT_EQ(error_at(R"({"prompt": 3, "chosen": "a", "rejected": "b"})"),
            at + "field \"prompt\" must be a string or a list of {role, content}, got 3");
  EXPECT_EQ(error_at(R"({"prompt": "q", "chosen": ["a"], "rejected": "b"})"),
            at + "field \"chosen\" must be a string, got [\"a\"]");
  EXPECT_EQ(error_at(R"({"prompt": "q", "chosen": "same", "rejected": "same"})"),
            at + "\"chosen\" and \"rejected\" are the same text (the pair prefers nothing)");
  EXPECT_EQ(error_at("[1, 2]"), at + "a pair must be a JSON object, got [1,2]");
  EXPECT_NE(error_at(R"({"prompt": [{"role": "assistant", "content": "hi"}], "chosen": "a", "rejected": "b"})")
                .find(at + "the last of \"messages\" must be the user's question"),
            std::string::npos);
  EXPECT_EQ(error_at("{not json").rfind(dir + "/p.jsonl:3", 0), 0u) << error_at("{not json");
  // A messages prompt is taken as the conversation; skip_bad counts what it drops.
  write_file_atomic(dir + "/p.jsonl", good + "\n{}\n" +
                    R"({"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "chosen": "a", "rejected": "b"})" + "\n");
  int64_t skipped = 0;
  const auto pairs = load_pairs(dir + "/p.jsonl", &skipped);
  EXPECT_EQ(skipped, 1);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].messages.size(), 2u);
  EXPECT_EQ(pairs[1].where, dir + "/p.jsonl:3");
  write_file_atomic(dir + "/empty.jsonl", "\n");
  EXPECT_EQ(error_of([&] { load_pairs(dir + "/empty.jsonl"); }),
            dir + "/empty.jsonl: no preference pairs (one JSON object per line)");
  fs::remove_all(dir);
}

TEST(RmConfig, BadConfigsNameTheField) {
  Fixture fx;
  auto error_with = [&](const std::string& from, const std::string& to) {
    std::string text = fx.config;
    text.replace(text.find(from), from.size(), to);
    write_file_atomic(fx.dir + "/bad.json", text);
    return error_of([&] { RmConfig::load(fx.dir + "/bad.json"); });
  };
  const std::string f = fx.dir + "/bad.json";
  EXPECT_EQ(error_with("\"seed\": 5", "\"sed\": 5"), f + ": train: unknown field \"sed\"");
  EXPECT_EQ(error_with("\"val\": \"val.jsonl\"", "\"vall\": 1"), f + ": data: unknown field \"vall\"");
  EXPECT_EQ(error_with("\"steps\": 24", "\"steps\": 24, \"epochs\": 1"), f + ": train: give \"steps\" or \"epochs\", not both");
  EXPECT_EQ(error_with("\"batch_size\": 8", "\"batch_size\": 0"), f + ": train: \"batch_size\" must be positive, got 0");
  EXPECT_EQ(error_with("\"lr\": 3e-3", "\"lr\": \"fast\""), f + ": train: field \"lr\" has the wrong type (\"fast\")");
  EXPECT_EQ(error_with("\"seed\": 5", "\"max_len\": 65"),
            f + ": train: \"max_len\" 65 exceeds the model's max_position_embeddings 64");
  EXPECT_EQ(error_with("\"init\": \"base\",", ""),
            f + ": missing \"init\" (the model directory to train a reward head on)");
  // An over-long pair is an error naming its line before any training (or skipped and counted).
  std::string pairs = read_file(fx.dir + "/pairs.jsonl");
  pairs.insert(pairs.find('\n') + 1, nlohmann::json{{"prompt", std::string(80, 'x')}, {"chosen", "a"}, {"rejected", "b"}}.dump() + "\n");
  write_file_atomic(fx.dir + "/pairs.jsonl", pairs);
  const RmConfig c = fx.load("long");
  EXPECT_NE(error_of([&] { train_rm(c, quiet()); })
                .find(fx.dir + "/pairs.jsonl:2: chosen has "),
            std::string::npos);
  EXPECT_FALSE(fs::exists(fx.dir + "/long/latest"));
}
