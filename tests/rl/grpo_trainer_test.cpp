// `seek grpo` on a tiny random model with its own small BPE tokenizer: the TokenObjective's
// gradient against finite differences of the GRPO loss, bit-for-bit reproducible runs, exact
// resume, no reference copy at β = 0, learning on a reward that prefers some tokens, and config
// errors naming the field.
#include "rl/grpo_trainer.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "model/params.h"
#include "model/test_configs.h"
#include "rl/grpo_trainer_rollout.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/checkpoint.h"

using namespace seek;
using namespace seek::rl;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The tests run one thread (runs: "threads": 1): a model this small is all parallel-region
// overhead, which on a loaded machine (ctest -j) costs more than the work. Restores the count.
struct ThreadsGuard {
  int n = omp_get_max_threads();
  ~ThreadsGuard() { omp_set_num_threads(n); }
};

std::string tmpdir(const std::string& name) {
  const std::string d = (fs::temp_directory_path() /
                         ("seek_grpo_test_" + name + "_" + std::to_string(::getpid())))
                            .string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A random tiny DeepSeek-V2-shaped model (MoE, no MTP) with a ~300-token BPE tokenizer and
// DeepSeek-V3's chat template, saved as a checkpoint directory, plus a task file of short prompts.
struct TinySetup {
  std::string dir = tmpdir("setup");
  std::string model = dir + "/model";
  std::string tasks = dir + "/tasks.jsonl";
  TinySetup() {
    std::vector<std::string> corpus;
    for (int i = 0; i < 20; ++i)
      corpus.push_back("the cat sat on the mat " + std::to_string(i * 7) +
                       " and thought about numbers, answers and <think> tags.");
    const train::BpeResult bpe = train::train_bpe(corpus, 300, train::kDeepSeekV3ChatTemplate);
    const std::string tok = dir + "/tok";
    fs::create_directories(tok);
    write_file_atomic(tok + "/tokenizer.json", bpe.tokenizer.dump());
    write_file_atomic(tok + "/tokenizer_config.json", bpe.tokenizer_config.dump());
    model::ModelConfig c = model::test::tiny_v2(bpe.vocab_size);
    c.max_position_embeddings = 128;
    const model::Params p = model::Params::init(c, 0.1, 7);
    train::TrainState st;
    st.m.assign(p.size(), 0.0f);
    st.v.assign(p.size(), 0.0f);
    train::save_checkpoint(dir, "model", p, st, tok, {}, 0, train::SaveDType::F32);
    std::string t;
    for (const char* q : {"a", "b", "cat", "mat", "sat", "on"})
      t += nlohmann::json{{"prompt", q}}.dump() + "\n";
    write_file_atomic(tasks, t);
  }
  ~TinySetup() { fs::remove_all(dir); }

  GrpoConfig config(const std::string& grpo, const std::string& train, const std::string& out) const {
    const std::string text = R"({
      // a tiny run
      "init": "model", "task": "tasks.jsonl",
      "reward": ["format", {"name": "language", "weight": 0.5}],
      "grpo": {"group_size": 4, "prompts_per_step": 2, "max_tokens": 6)" + grpo + R"(},
      "train": {"seed": 3, "log_every": 1, "threads": 1)" + train + R"(},
      "out": ")" + out + R"("})";
    write_file_atomic(dir + "/grpo.json", text);
    return GrpoConfig::load(dir + "/grpo.json");
  }
};

TinySetup& setup() {
  static TinySetup s;
  return s;
}

std::vector<nlohmann::json> records(const std::string& out) {
  std::vector<nlohmann::json> r;
  std::istringstream in(read_file(out + "/metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    for (const char* k : {"gen_seconds", "reward_seconds", "train_seconds", "rollout_tokens_per_s", "train_tokens_per_s",
                          "eval_seconds"})
      j.erase(k);
    r.push_back(j);
  }
  return r;
}

GrpoRunOptions quiet() {
  GrpoRunOptions o;
  o.progress = false;
  o.precise = true;  // F32 rollouts: tokens independent of the batch
  return o;
}

// Share of the completion's bytes that are ASCII: random byte tokens above 0x7f (half the
// byte alphabet) score 0, so the reward prefers a set of tokens the policy must learn to pick.
struct AsciiReward : Reward {
  std::string name() const override { return "ascii"; }
  RewardResult score(const RewardInput& in) const override {
    RewardResult r;
    if (in.completion.empty()) return r;
    size_t ascii = 0;
    for (char ch : in.completion) ascii += (unsigned char)ch < 0x80;
    r.reward = double(ascii) / double(in.completion.size());
    r.correct = r.reward == 1.0;
    return r;
  }
};

}  // namespace

// The objective the trainer hands to forward_backward: its loss is grpo_loss's on the same
// log-probs, and its gradient (through the model's backward) matches central differences of that
// loss, with ratios inside and outside the clip range and the KL term on.
TEST(GrpoTrainerObjective, GradientMatchesFiniteDifferencesOfTheLoss) {
  ThreadsGuard threads;
  omp_set_num_threads(1);
  const model::ModelConfig c = model::test::tiny_v2();
  model::Params p = model::Params::init(c, 0.3, 4);
  std::mt19937 rng(9);
  model::TokenBatch b;
  const std::vector<int64_t> lengths = {6, 4, 7}, prompt_len = {2, 3, 1};
  for (int64_t n : lengths)
    for (int64_t t = 0; t <= n; ++t) b.tokens.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  b.lengths = lengths;
  const std::vector<double> adv = {1.3, -0.7, 0.4};
  GrpoLossOptions lo;
  lo.beta = 0.2;
  lo.norm = LossNorm::Token;
  const GrpoRows rows = grpo_rows(lengths, prompt_len, adv, lo);
  ASSERT_EQ(rows.rows(), 17);

  // This policy's log-probs, then π_old and π_ref away from them by ±0.05 (inside the clip
  // range) or ±0.5 (outside), well clear of the kinks at log 0.8 and log 1.2.
  std::vector<double> logp(17), old(17), ref(17);
  model::ModelGrads none;
  model::ObjectiveOptions fo;
  fo.backward = false;
  fo.token_objective = grpo_objective(rows, 0, {}, {}, lo, &logp, nullptr, false);
  model::forward_backward(c, p.weights(), none, b, fo);
  const double shift[] = {0.05, -0.5, -0.05, 0.5};
  for (size_t r = 0; r < 17; ++r) {
    old[r] = logp[r] + shift[r % 4];
    ref[r] = logp[r] + shift[(r + 1) % 4];
  }

  std::vector<float> grad(p.size(), 0.0f);
  model::ModelGrads g = p.grads(grad.data());
  GrpoStats base;
  model::ObjectiveOptions oo;
  oo.token_objective = grpo_objective(rows, 0, old, ref, lo, nullptr, &base, true);
  const model::StepResult sr = model::forward_backward(c, p.weights(), g, b, oo);
  EXPECT_EQ(base.tokens, 17 - (2 - 1) - (3 - 1) - 0);
  EXPECT_GT(base.clipped, 0.0);
  EXPECT_GT(base.entropy, 0.0);

  // The same loss from grpo_loss over flat arrays (prompt targets masked out).
  std::vector<uint8_t> mask(rows.completion.begin(), rows.completion.end());
  PolicyTokens in{logp, old, ref, mask, lengths, adv};
  const GrpoLoss want = grpo_loss(in, lo);
  EXPECT_NEAR(base.loss, want.loss, 1e-12 + 1e-9 * std::fabs(want.loss));
  EXPECT_NEAR(sr.loss, want.loss, 1e-6 + 1e-6 * std::fabs(want.loss));

  auto loss_at = [&](model::StepResult* out) {
    GrpoStats s;
    model::ObjectiveOptions o = fo;
    o.token_objective = grpo_objective(rows, 0, old, ref, lo, nullptr, &s, false);
    *out = model::forward_backward(c, p.weights(), none, b, o);
    return s.loss;
  };
  const float eps = 1e-2f;
  int checked = 0, failed = 0, large = 0;
  std::mt19937 pick(3);
  for (const model::ParamInfo& info : p.infos()) {
    if (!info.trainable) continue;
    for (int k = 0; k < 4; ++k) {
      const size_t i = info.offset + size_t(pick() % uint64_t(info.numel));
      const float orig = p.data()[i];
      model::StepResult up, dn;
      p.data()[i] = orig + eps;
      const double lu = loss_at(&up);
      p.data()[i] = orig - eps;
      const double ld = loss_at(&dn);
      p.data()[i] = orig;
      // Where a nudge changes an expert choice the loss has a kink: not comparable.
      if (up.expert_load != sr.expert_load || dn.expert_load != sr.expert_load) continue;
      const double fd = (lu - ld) / (2.0 * eps), an = grad[i];
      ++checked;
      large += std::fabs(an) > 1e-2;
      if (std::fabs(fd - an) > 1e-3 + 3e-2 * std::fabs(an)) {
        ++failed;
        ADD_FAILURE() << info.name << "[" << (i - info.offset) << "]: analytic " << an
                      << " vs finite difference " << fd;
      }
    }
  }
  EXPECT_GT(checked, 60);
  EXPECT_GT(large, checked / 4);  // the check is not passing on vanishing gradients
  EXPECT_EQ(failed, 0);
}

// Two seeded runs agree bit for bit (metrics apart from timings, and the weights); a run stopped
// after step 2 and resumed equals the uninterrupted one. μ = 2 and β > 0 exercise the stored
// π_old and the reference.
TEST(GrpoRun, ReproducibleAndResumesExactly) {
  ThreadsGuard threads;
  const TinySetup& s = setup();
  const std::string grpo = R"(, "steps": 4, "mu": 2, "beta": 0.05)";
  const std::string train = R"(, "lr": 1e-2, "save_every": 2, "eval_every": 2, "eval_n": 2)";
  GrpoConfig a = s.config(grpo, train, "run_a");
  const GrpoResult ra = run_grpo(a, quiet());
  EXPECT_EQ(ra.checkpoint, a.out + "/final");
  EXPECT_GT(ra.reference_params, 0);
  const GrpoConfig b = s.config(grpo, train, "run_b");
  run_grpo(b, quiet());
  GrpoConfig c = s.config(grpo, train, "run_c");
  GrpoRunOptions stop = quiet();
  stop.stop_after = 2;
  EXPECT_EQ(run_grpo(c, stop).checkpoint, c.out + "/step-000002");
  GrpoRunOptions resume = quiet();
  resume.resume = true;
  run_grpo(c, resume);

  const std::vector<nlohmann::json> ma = records(a.out);
  ASSERT_EQ(ma.size(), 4u + 3u);  // 4 steps, evaluations at steps 0, 2 and 4
  double kl = 0.0, adv_signal = 0.0;
  for (const nlohmann::json& j : ma) {
    if (j["type"] != "train") continue;
    EXPECT_TRUE(j.contains("reward/format") && j.contains("reward/language")) << j.dump();
    for (const char* k : {"reward", "accuracy", "response_length", "kl", "clip_fraction",
                          "entropy", "ratio", "grad_norm", "lr"})
      EXPECT_TRUE(j.contains(k)) << k;
    kl += j["kl"].get<double>();
    adv_signal += j["grad_norm"].get<double>();
  }
  EXPECT_GT(kl, 0.0);          // the policy moved away from the reference
  EXPECT_GT(adv_signal, 0.0);  // rewards differed within groups: there was something to learn
  EXPECT_EQ(records(b.out), ma);
  EXPECT_EQ(records(c.out), ma);
  const std::string wa = read_file(a.out + "/final/model.safetensors");
  EXPECT_EQ(read_file(b.out + "/final/model.safetensors"), wa);
  EXPECT_EQ(read_file(c.out + "/final/model.safetensors"), wa);
  EXPECT_NE(read_file(s.model + "/model.safetensors"), wa);  // and training changed the weights
  EXPECT_TRUE(file_exists(a.out + "/report.html"));
  EXPECT_TRUE(file_exists(a.out + "/final/tokenizer.json"));
  EXPECT_NE(error_of([&] { run_grpo(a, quiet()); }).find("--resume"), std::string::npos);
  GrpoConfig missing = s.config(grpo, train, "run_missing");
  missing.task = s.dir + "/none.jsonl";
  EXPECT_NE(error_of([&] { run_grpo(missing, quiet()); }).find("\"task\" " + missing.task),
            std::string::npos);
  missing.task = "countdown";
  missing.init = s.dir + "/none";
  EXPECT_NE(error_of([&] { run_grpo(missing, quiet()); }).find("\"init\" " + missing.init),
            std::string::npos);
}

// β = 0: no reference copy is loaded (and the KL metric is 0).
TEST(GrpoRun, BetaZeroKeepsNoReference) {
  ThreadsGuard threads;
  const TinySetup& s = setup();
  const GrpoConfig c = s.config(R"(, "steps": 2, "beta": 0)", R"(, "lr": 1e-2, "eval_every": 0)", "run_beta0");
  const GrpoResult r = run_grpo(c, quiet());
  EXPECT_EQ(r.reference_params, 0);
  for (const nlohmann::json& j : records(c.out)) EXPECT_EQ(j["kl"].get<double>(), 0.0);
}

// Splitting the P·G sequences into micro-batches (here one sequence each) changes only the
// summation order of the gradient: the same loss, gradient norm and statistics.
TEST(GrpoRun, MicroBatchesGiveTheSameUpdate) {
  ThreadsGuard threads;
  const TinySetup& s = setup();
  const std::string grpo = R"(, "steps": 1, "mu": 2, "beta": 0.05, "loss_norm": "token")";
  const GrpoConfig whole = s.config(grpo, R"(, "lr": 1e-2, "eval_every": 0)", "run_mb_whole");
  run_grpo(whole, quiet());
  const GrpoConfig split = s.config(grpo, R"(, "lr": 1e-2, "eval_every": 0)", "run_mb_split");
  GrpoRunOptions o = quiet();
  o.micro_batch_tokens = 1;
  run_grpo(split, o);
  const std::vector<nlohmann::json> a = records(whole.out), b = records(split.out);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0]["reward"], b[0]["reward"]);
  // μ = 2: the second update's ratios and clipping see the first update's micro-batched result.
  for (const char* k : {"loss", "grad_norm", "kl", "entropy", "ratio", "clip_fraction"}) {
    const double x = a[0][k].get<double>(), y = b[0][k].get<double>();
    EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::fabs(x))) << k;
  }
  EXPECT_GT(a[0]["grad_norm"].get<double>(), 0.0);
  EXPECT_NE(a[0]["ratio"].get<double>(), 1.0);  // the second update was off-policy
}

// With a reward that prefers some tokens, a few steps raise the mean reward.
TEST(GrpoRun, LearnsToPreferRewardedTokens) {
  ThreadsGuard threads;
  const TinySetup& s = setup();
  const GrpoConfig c = s.config(R"(, "steps": 8, "group_size": 8, "beta": 0, "max_tokens": 8)",
                                R"(, "lr": 0.1, "eval_every": 0)", "run_learn");
  GrpoRunOptions o = quiet();
  o.reward = std::make_shared<AsciiReward>();
  run_grpo(c, o);
  const std::vector<nlohmann::json> m = records(c.out);
  ASSERT_EQ(m.size(), 8u);
  const double before = (m[0]["reward"].get<double>() + m[1]["reward"].get<double>()) / 2.0;
  const double after = (m[6]["reward"].get<double>() + m[7]["reward"].get<double>()) / 2.0;
  EXPECT_GT(after, before + 0.3) << "reward " << before << " → " << after;
  EXPECT_TRUE(m[0].contains("reward/ascii"));
}

TEST(GrpoConfigParse, BadFieldsAreErrorsNamingTheField) {
  const std::string dir = tmpdir("config");
  auto err = [&](const std::string& text) {
    return error_of([&] { GrpoConfig::parse(text, dir + "/c.json"); });
  };
  const std::string head = R"({"init": "m", "task": "countdown", "out": "o", )";
  EXPECT_NE(err(head + R"("grpo": {"group_sise": 4}})").find("grpo: unknown field \"group_sise\""), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"group_size": "4"}})").find("\"group_size\" has the wrong type"), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"group_size": 1}})").find("\"group_size\" must be at least 2"), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"mu": 0}})").find("\"mu\" must be positive"), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"advantage": "rank"}})").find("\"advantage\" must be std or no_std"), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"loss_norm": "mean"}})").find("\"loss_norm\""), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"beta": -1}})").find("\"beta\""), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"eps_low": 1.5}})").find("\"eps_low\""), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"temperature": 0}})").find("\"temperature\""), std::string::npos);
  EXPECT_NE(err(head + R"("grpo": {"top_p": 2}})").find("\"top_p\""), std::string::npos);
  EXPECT_NE(err(head + R"("train": {"lr": 0}})").find("train: \"lr\""), std::string::npos);
  EXPECT_NE(err(head + R"("train": {"seq_len": 8}})").find("train: unknown field \"seq_len\""), std::string::npos);
  EXPECT_NE(err(head + R"("train": {"schedule": "linear"}})").find("\"schedule\""), std::string::npos);
  EXPECT_NE(err(head + R"("reward": ["countdwn"]})").find("reward[0]"), std::string::npos);
  EXPECT_NE(err(head + R"("reward": [{"name": "format", "weight": "high"}]})").find("\"weight\" has the wrong type"), std::string::npos);
  EXPECT_NE(err(head + R"("reward": []})").find("reward"), std::string::npos);
  EXPECT_NE(err(head + R"("extra": 1})").find("unknown field \"extra\""), std::string::npos);
  EXPECT_NE(err(R"({"task": "countdown", "out": "o"})").find("missing \"init\""), std::string::npos);
  EXPECT_NE(err(R"({"init": "m", "task": "t.jsonl", "out": "o"})").find("missing \"reward\""), std::string::npos);
  EXPECT_NE(err(R"({"init": "m", "task": "countdown"})").find("missing \"out\""), std::string::npos);
  EXPECT_NE(err("{").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([&] { GrpoConfig::load(dir + "/none.json"); }).find("none.json"), std::string::npos);

  // A good config: defaults of R1-Zero, paths resolved against the file.
  const GrpoConfig c = GrpoConfig::parse(head + R"("grpo": {"loss_norm": "constant", "advantage": "no_std"}})", dir + "/c.json");
  EXPECT_EQ(c.group_size, 16);
  EXPECT_EQ(c.loss.beta, 0.001);
  EXPECT_EQ(c.loss.norm, LossNorm::Constant);
  EXPECT_EQ(c.loss.max_len, c.max_tokens);
  EXPECT_FALSE(c.advantage.scale_by_std);
  EXPECT_EQ(c.init, dir + "/m");
  EXPECT_EQ(c.out, dir + "/o");
  EXPECT_EQ(c.reward, nlohmann::json::parse(R"([{"name": "countdown", "weight": 1.0}])"));
  fs::remove_all(dir);
}

// One engine batch: completion 0 of each prompt prefills it, the other G − 1 copy its rows; the
// per-request seeds make a rollout repeat exactly and the completions of a group differ.
TEST(GrpoRollout, GroupsShareThePromptAndRepeatExactly) {
  ThreadsGuard threads;
  omp_set_num_threads(1);
  const TinySetup& s = setup();
  const std::unique_ptr<model::Model> m = model::Model::load(s.model);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(s.model);
  const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(s.model);
  std::vector<ChatPrompt> prompts;
  for (const char* q : {"the cat", "on the mat and more"})
    prompts.push_back(render_prompt(tmpl, tok, nlohmann::json::array({{{"role", "user"}, {"content", q}}})));
  RolloutOptions ro;
  ro.sampling.temperature = 1.0f;
  ro.sampling.seed = 11;
  ro.group = 3;
  ro.max_tokens = 6;
  ro.precise = true;
  const std::vector<Completion> a = rollout(*m, &tok, prompts, ro);
  ASSERT_EQ(a.size(), 6u);
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt, i / 3);
    EXPECT_EQ(a[i].cached_tokens, i % 3 == 0 ? 0 : int64_t(prompts[i / 3].ids.size()) - 1) << i;
    EXPECT_FALSE(a[i].tokens.empty());
    EXPECT_EQ(a[i].text, tok.decode(a[i].tokens, true));
    distinct.insert(a[i].tokens);
  }
  EXPECT_GE(distinct.size(), 5u);
  const std::vector<Completion> b = rollout(*m, &tok, prompts, ro);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(b[i].tokens, a[i].tokens) << i;
  ro.max_tokens = 200;
  EXPECT_NE(error_of([&] { rollout(*m, &tok, prompts, ro); }).find("exceeds the model's context"),
            std::string::npos);
}

// The prompts of a step are a function of (seed, step); a task file is visited once per epoch.
TEST(GrpoTasks, StepPromptsAreDeterministicAndCoverEachEpoch) {
  const TinySetup& s = setup();
  const TaskSource file(s.tasks);
  std::multiset<std::string> epoch;
  for (int64_t step = 0; step < 3; ++step)
    for (const EvalTask& t : file.step_tasks(5, step, 2)) epoch.insert(t.prompt);
  EXPECT_EQ(epoch, (std::multiset<std::string>{"a", "b", "cat", "mat", "sat", "on"}));
  EXPECT_EQ(file.step_tasks(5, 4, 2)[1].prompt, file.step_tasks(5, 4, 2)[1].prompt);
  const TaskSource cd("countdown");
  EXPECT_EQ(cd.step_tasks(1, 7, 3)[2].prompt, cd.step_tasks(1, 7, 3)[2].prompt);
  EXPECT_NE(cd.step_tasks(1, 7, 1)[0].prompt, cd.step_tasks(1, 8, 1)[0].prompt);
  for (const EvalTask& t : cd.step_tasks(1, 0, 20))
    EXPECT_EQ(countdown_split(CountdownProblem::from_json(t.record)), CountdownSplit::Train);
}
