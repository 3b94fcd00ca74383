// `mpirun -np N seek train` (issue 15): data parallelism and ZeRO-1 against the single-process
// run on the same data, a rank that dies, and a resume with another number of ranks. OpenMPI's
// mpirun runs every rank on this machine (--oversubscribe: more ranks than cores).
#include <nlohmann/json.hpp>
#include <tuple>

#include "cli/harness.h"
#include "model/config.h"
#include "model/params.h"
#include "model/test_configs.h"
#include "model/transformer.h"

namespace seek::cli_test {
namespace {

// Under the sanitizer build the ranks run without leak checking: OpenMPI's allocations live in
// MCA components it dlopens and unloads, which LeakSanitizer can neither symbolize nor suppress.
// (The same training code is leak-checked in the single-process tests.)
std::vector<std::string> mpirun(int np) {
  return {"/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader",
          "-x", "ASAN_OPTIONS=detect_leaks=0", "-np", std::to_string(np)};
}

// A tiny DeepSeek-V3 model (MLA, MoE with a shared expert, MTP) on a token file; `extra` adds
// top-level sections, `train_extra` fields of "train"; `layers` main layers (the first dense).
void write_run(const TempDir& dir, const std::string& name, int64_t steps,
               const std::string& extra = "", int64_t save_every = 1000, int layers = 2,
               const std::string& train_extra = "") {
  std::string model = model::test::tiny_v3_model_json(64, 64);
  const std::string two = "\"num_hidden_layers\": 2";
  model.replace(model.find(two), two.size(), "\"num_hidden_layers\": " + std::to_string(layers));
  std::string ids;
  for (uint32_t i = 0; i < 4000; ++i) {
    const uint32_t id = (i % 17 == 0) ? 2 + (i / 17) % 50 : (i * 7 + i / 5) % 64;
    ids.append(reinterpret_cast<const char*>(&id), 4);
  }
  spit(dir / "ids.bin", ids);
  spit(dir / (name + ".json"), R"({
    "model": )" + model + R"(,
    "data": {"tokens": "ids.bin", "order": "sequential"},
    "train": {"seq_len": 16, "batch_size": 4, "steps": )" + std::to_string(steps) + R"(, "lr": 3e-3,
              "schedule": "constant", "warmup": 0, "log_every": 1, "eval_every": 1000,
              "save_every": )" + std::to_string(save_every) + R"(, "bias_update_speed": 0.01)" +
                                      train_extra + "}," +
                                      extra + R"(
    "out": ")" + name + R"(" })");
}

std::vector<nlohmann::json> lines_of_type(const std::string& metrics, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(metrics));
  std::string line;
  while (std::getline(in, line))
    if (auto j = nlohmann::json::parse(line); j["type"] == type) out.push_back(j);
  return out;
}
std::vector<nlohmann::json> train_lines(const std::string& metrics) { return lines_of_type(metrics, "train"); }

std::vector<float> final_weights(const std::string& dir) {
  const model::ModelConfig c = model::ModelConfig::load(dir);
  return model::Params::load(c, dir).data();
}

// Runs DIR/NAME.json under `mpirun -np NP` and checks it against DIR/single (the same run in one
// process, 6 steps): losses and gradient norms within `tol` relative, the experts' loads exactly,
// final weights within 1e-5 of the largest. Returns the run's train lines.
std::vector<nlohmann::json> expect_same_as_single(const TempDir& dir, const std::string& name, int np,
                                                  double tol = 1e-7, const std::string& single = "single") {
  std::vector<std::string> cmd = mpirun(np);
  cmd.insert(cmd.end(), {SEEK_BINARY, "train", "--config", dir / (name + ".json"), "--quiet"});
  Result r = run_program(cmd);
  EXPECT_EQ(r.code, 0) << name << ": " << r.err << r.out;
  if (r.code != 0) return {};
  const auto a = train_lines(dir / (single + "/metrics.jsonl")), b = train_lines(dir / (name + "/metrics.jsonl"));
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(b.size(), a.size()) << name;
  for (size_t s = 0; s < std::min(a.size(), b.size()); ++s) {
    EXPECT_EQ(b[s]["ranks"], np);
    for (const char* k : {"loss", "ce", "grad_norm"}) {
      const double x = a[s][k].get<double>(), y = b[s][k].get<double>();
      EXPECT_NEAR(y, x, tol * std::fabs(x)) << name << " step " << s + 1 << " " << k;
    }
    EXPECT_EQ(a[s]["moe"], b[s]["moe"]) << name << " step " << s + 1;
  }
  const std::vector<float> wa = final_weights(dir / (single + "/final")), wb = final_weights(dir / (name + "/final"));
  EXPECT_EQ(wa.size(), wb.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < std::min(wa.size(), wb.size()); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(wa[i] - wb[i])));
    max_abs = std::max(max_abs, double(std::fabs(wa[i])));
  }
  EXPECT_LT(max_diff, 1e-5 * max_abs) << name;
  return b;
}

// Resumes DIR/NAME (saved after 3 steps) to step 6 on `np` ranks with "parallel": `parallel`
// (none for one process) and checks it against DIR/single, the uninterrupted run.
void resume_as_single(const TempDir& dir, const std::string& name, int np, const std::string& parallel) {
  nlohmann::json cfg = nlohmann::json::parse(slurp(dir / (name + ".json")));
  cfg["train"]["steps"] = 6;
  if (np > 1) cfg["parallel"] = nlohmann::json::parse(parallel);
  else cfg.erase("parallel");
  spit(dir / (name + ".json"), cfg.dump());
  std::vector<std::string> resume = np > 1 ? mpirun(np) : std::vector<std::string>{};
  resume.insert(resume.end(), {SEEK_BINARY, "train", "--config", dir / (name + ".json"), "--resume", "--quiet"});
  const Result r = run_program(resume);
  ASSERT_EQ(r.code, 0) << name << ": " << r.err;
  const auto a = train_lines(dir / "single/metrics.jsonl"), b = train_lines(dir / (name + "/metrics.jsonl"));
  ASSERT_EQ(b.size(), 6u) << name;
  for (size_t s = 0; s < 6; ++s)
    for (const char* k : {"loss", "grad_norm"})
      EXPECT_NEAR(b[s][k].get<double>(), a[s][k].get<double>(), 1e-6 * std::fabs(a[s][k].get<double>()))
          << name << " step " << s + 1 << " " << k;
  const std::vector<float> wa = final_weights(dir / "single/final"), wb = final_weights(dir / (name + "/final"));
  ASSERT_EQ(wa.size(), wb.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < wa.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(wa[i] - wb[i])));
    max_abs = std::max(max_abs, double(std::fabs(wa[i])));
  }
  EXPECT_LT(max_diff, 1e-5 * max_abs) << name;
}

// Same data, same steps: losses, gradient norms and final weights of 2 data-parallel ranks and of
// 4 ranks with ZeRO-1 equal the single process's up to the order of float sums (the gradient
// is summed over ranks instead of over one batch). Measured: losses and gradient norms within
// ~3e-9 relative (bound 1e-7), weights after 6 AdamW steps within 7e-7 of the largest (bound
// 1e-5); the experts' loads exactly.
TEST(Distributed, DataParallelAndZero1EqualTheSingleProcessRun) {
  TempDir dir;
  write_run(dir, "single", 6);
  write_run(dir, "dp2", 6, R"( "parallel": {"data": 2},)");
  write_run(dir, "dp4z", 6, R"( "parallel": {"data": 4, "zero": 1},)");
  Result one = run_seek({"train", "--config", dir / "single.json", "--quiet"});
  ASSERT_EQ(one.code, 0) << one.err;
  expect_same_as_single(dir, "dp2", 2);
  expect_same_as_single(dir, "dp4z", 4);
}

// Expert parallelism (the model's 4 routed experts split over groups of 2 or 4 ranks, all-to-all
// dispatch and combine in both MoE blocks, the main layer's and the MTP module's), alone and
// inside 4 data-parallel ranks with ZeRO-1: the same run as one process. The metrics name each
// rank's routed rows, which add up to the experts' loads, and the rows it exchanged.
TEST(Distributed, ExpertParallelEqualsTheSingleProcessRun) {
  TempDir dir;
  write_run(dir, "single", 6);
  write_run(dir, "ep2", 6, R"( "parallel": {"data": 2, "expert": 2},)");
  write_run(dir, "ep4", 6, R"( "parallel": {"expert": 4},)");
  write_run(dir, "dp4ep2z", 6, R"( "parallel": {"data": 4, "expert": 2, "zero": 1},)");
  Result one = run_seek({"train", "--config", dir / "single.json", "--quiet"});
  ASSERT_EQ(one.code, 0) << one.err;
  expect_same_as_single(dir, "ep2", 2);
  expect_same_as_single(dir, "dp4ep2z", 4);
  for (const nlohmann::json& m : expect_same_as_single(dir, "ep4", 4)) {
    // One expert per rank: rank q ran expert q's rows of every MoE block.
    ASSERT_EQ(m["ep_rows"].size(), 4u);
    for (size_t q = 0; q < 4; ++q) {
      int64_t load = 0;
      for (const auto& block : m["moe"]) load += block["load"][q].get<int64_t>();
      EXPECT_EQ(m["ep_rows"][q].get<int64_t>(), load) << "rank " << q;
      EXPECT_GT(m["a2a_rows"][q].get<int64_t>(), 0) << "rank " << q;
    }
    // The dispatches ran (MPI_Ialltoallv) while rank 0 computed its shared experts.
    EXPECT_GT(m["a2a_overlap_s"].get<double>(), 0.0);
  }
}

// Under expert parallelism a rank holds only its share of the routed experts (weights, gradients
// and AdamW state); checkpoints are the whole model, gathered by rank 0, so a run saved on
// 4 expert ranks resumes on 2 expert ranks and on one process, each finishing as the
// uninterrupted single-process run.
TEST(Distributed, ExpertRanksHoldTheirExpertsOnlyAndResumeOnOtherRankCounts) {
  TempDir dir;
  write_run(dir, "single", 6);
  Result one = run_seek({"train", "--config", dir / "single.json", "--quiet"});
  ASSERT_EQ(one.code, 0) << one.err;
  for (const auto& [name, next, np] : {std::tuple{"to_ep2", R"({"data": 2, "expert": 2})", 2},
                                       {"to_one", "", 1}}) {
    write_run(dir, name, 3, R"( "parallel": {"expert": 4},)", /*save_every=*/3);
    std::vector<std::string> cmd = mpirun(4);
    cmd.insert(cmd.end(), {SEEK_BINARY, "train", "--config", dir / (std::string(name) + ".json"), "--quiet"});
    Result r = run_program(cmd);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto first = train_lines(dir / (std::string(name) + "/metrics.jsonl"));
    ASSERT_EQ(first.size(), 3u);
    // 4 experts over 4 ranks: each holds the shared weights and one expert of each MoE block.
    const int64_t whole = first[0]["model_params"].get<int64_t>();
    const auto held = first[0]["rank_params"].get<std::vector<int64_t>>();
    ASSERT_EQ(held.size(), 4u);
    int64_t experts = 0;  // the routed experts' weights, from the whole model's layout
    const model::ModelConfig mc = model::ModelConfig::load(dir / "single/final");
    const model::Params layout = model::Params::layout_only(mc);
    for (const model::ParamInfo& i : layout.infos())
      if (i.spec.expert >= 0) experts += i.numel;
    for (int64_t h : held) EXPECT_EQ(h, whole - experts + experts / 4);

    resume_as_single(dir, name, np, next);
  }
}

// A pipeline run's checkpoint is the whole model too (rank 0 takes the other stages' weights and
// moments from their ranks): saved on 4 stages (1F1B), it resumes on 2 DualPipe ranks and on one
// process, each finishing as the uninterrupted single-process run.
TEST(Distributed, PipelineRunsResumeOnOtherRankCounts) {
  TempDir dir;
  const std::string accum = R"(, "grad_accum": 4)";
  write_run(dir, "single", 6, "", 1000, 4, accum);
  Result one = run_seek({"train", "--config", dir / "single.json", "--quiet"});
  ASSERT_EQ(one.code, 0) << one.err;
  for (const auto& [name, next, np] : {std::tuple{"to_dual", R"({"pipeline": 2, "schedule": "dualpipe"})", 2},
                                       {"to_one", "", 1}}) {
    write_run(dir, name, 3, R"( "parallel": {"pipeline": 4},)", /*save_every=*/3, 4, accum);
    std::vector<std::string> cmd = mpirun(4);
    cmd.insert(cmd.end(), {SEEK_BINARY, "train", "--config", dir / (std::string(name) + ".json"), "--quiet"});
    Result r = run_program(cmd);
    ASSERT_EQ(r.code, 0) << r.err;
    resume_as_single(dir, name, np, next);
  }
}

// Pipeline parallelism (a 4-layer model, 4 micro-batches per step; 8 for DualPipe on 4 stages):
// 1F1B on 2 and 4 stages, DualPipe on 2 and 4 (both directions, split backwards with deferred
// weight gradients, F&B pairs), 2 pipelines of 2 stages with ZeRO-1, and 2 pipelines × 2 stages
// with expert parallelism across the pipelines: the same run as one process. The metrics give
// each rank's compute and wait, each stage's measured op costs and the simulator's bubble.
TEST(Distributed, PipelineParallelEqualsTheSingleProcessRun) {
  TempDir dir;
  const std::string accum = R"(, "grad_accum": 4)";
  write_run(dir, "single", 6, "", 1000, 4, accum);
  write_run(dir, "single8", 6, "", 1000, 4, R"(, "grad_accum": 8)");
  struct Run {
    std::string name, parallel;
    int np, stages;
    std::string single = "single";
  };
  const std::vector<Run> runs = {
      {"pp2", R"({"pipeline": 2})", 2, 2},
      {"pp2split", R"({"pipeline": 2, "stage_layers": [3, 1]})", 2, 2},
      {"pp2dual", R"({"pipeline": 2, "schedule": "dualpipe"})", 2, 2},
      {"pp4", R"({"pipeline": 4})", 4, 4},
      {"pp4dual", R"({"pipeline": 4, "schedule": "dualpipe"})", 4, 4, "single8"},
      {"dp2pp2z", R"({"data": 2, "pipeline": 2, "zero": 1})", 4, 2},
      {"dp2ep2pp2", R"({"data": 2, "expert": 2, "pipeline": 2})", 4, 2}};
  for (const Run& r : runs)
    write_run(dir, r.name, 6, R"( "parallel": )" + r.parallel + ",", 1000, 4,
              r.single == "single" ? accum : R"(, "grad_accum": 8)");
  for (const char* single : {"single", "single8"}) {
    Result one = run_seek({"train", "--config", dir / (std::string(single) + ".json"), "--quiet"});
    ASSERT_EQ(one.code, 0) << one.err;
  }
  // Each rank stores only its stages' weights (and its share of their experts): the tensors of
  // the whole model once per replica, the embedding at both ends of a pipeline, the experts once
  // per expert group; DualPipe twice (each rank runs two stages, as in V3).
  const model::Params whole = model::Params::layout_only(model::ModelConfig::load(dir / "single/final"));
  int64_t embedding = 0, experts = 0;
  for (const model::ParamInfo& i : whole.infos()) {
    if (i.spec.role == model::TensorRole::Embedding) embedding += i.numel;
    if (i.spec.expert >= 0) experts += i.numel;
  }
  const int64_t all = int64_t(whole.size());
  for (const Run& r : runs)
    for (const nlohmann::json& m : expect_same_as_single(dir, r.name, r.np, 1e-7, r.single)) {
      EXPECT_EQ(m["model_params"].get<int64_t>(), all) << r.name;
      const auto held = m["rank_params"].get<std::vector<int64_t>>();
      ASSERT_EQ(held.size(), size_t(r.np)) << r.name;
      int64_t sum = 0;
      for (int64_t h : held) sum += h;
      if (r.name == "pp2dual") {  // DualPipe on 2 stages: each rank runs both
        EXPECT_EQ(held, (std::vector<int64_t>{all, all})) << r.name;
      } else if (r.name == "dp2ep2pp2") {
        EXPECT_EQ(sum, 2 * (all + embedding) - experts) << r.name;
      } else if (r.name == "pp4dual") {
        EXPECT_EQ(sum, 2 * all) << r.name;
        for (int64_t h : held) EXPECT_LT(h, all) << r.name;
      } else {
        const int replicas = r.np / r.stages;
        EXPECT_EQ(sum, replicas * (all + embedding)) << r.name;
        for (int64_t h : held) EXPECT_LT(h, all) << r.name;
      }
      if (r.name == "pp4dual") {  // rank r and rank 3 − r hold the same two stages: 2× the model
        EXPECT_EQ(held[0], held[3]);
        EXPECT_EQ(held[1], held[2]);
      }
      ASSERT_EQ(m["pp_busy_s"].size(), size_t(r.np)) << r.name;
      for (int q = 0; q < r.np; ++q) {
        EXPECT_GT(m["pp_busy_s"][q].get<double>(), 0.0) << r.name << " rank " << q;
        EXPECT_GE(m["pp_wait_s"][q].get<double>(), 0.0) << r.name << " rank " << q;
      }
      ASSERT_EQ(m["pp_costs_s"].size(), size_t(r.stages)) << r.name;
      for (const auto& c : m["pp_costs_s"]) EXPECT_GT(c["F"].get<double>(), 0.0) << r.name;
      EXPECT_GE(m["pp_sim_wait_s"].get<double>(), 0.0) << r.name;
    }
}

// `seek sft` on 2 ranks, data-parallel, expert-parallel (a MoE model) and pipeline-parallel
// (2 stages): packed chat samples (a share may hold no sample at all: with expert parallelism
// that rank still joins every exchange), the loss normalized by the whole step's assistant
// tokens, validation on shares: equal to the single process's run.
TEST(Distributed, SftOnTwoRanksEqualsOneProcess) {
  TempDir dir;
  make_tiny_base(dir, model::test::tiny_v3_model_json(128));
  std::string chats;
  for (int a = 0; a < 13; ++a)
    chats += nlohmann::json{{"messages", {{{"role", "user"}, {"content", "add " + std::to_string(a) + " and 2"}},
                                          {{"role", "assistant"}, {"content", std::to_string(a + 2)}}}}}.dump() + "\n";
  spit(dir / "chats.jsonl", chats);
  for (const auto& [name, parallel] : {std::pair<std::string, std::string>{"one", ""}, {"two", ""},
                                       {"ep", R"("parallel": {"expert": 2},)"},
                                       {"pp", R"("parallel": {"pipeline": 2},)"}})
    spit(dir / (name + ".json"), R"({
      "init": "base/final", "data": {"sft": "chats.jsonl", "val": "chats.jsonl"}, )" + parallel + R"(
      "train": {"seq_len": 64, "batch_size": 2, "epochs": 2, "lr": 1e-3, "warmup": 0, "log_every": 1,
                "eval_every": 2},
      "out": ")" + name + R"(" })");
  Result one = run_seek({"sft", "-c", dir / "one.json", "-q"});
  ASSERT_EQ(one.code, 0) << one.err;
  const auto a = train_lines(dir / "one/metrics.jsonl");
  ASSERT_GT(a.size(), 2u);
  for (const char* name : {"two", "ep", "pp"}) {
    std::vector<std::string> cmd = mpirun(2);
    cmd.insert(cmd.end(), {SEEK_BINARY, "sft", "-c", dir / (std::string(name) + ".json"), "-q"});
    Result two = run_program(cmd);
    ASSERT_EQ(two.code, 0) << name << ": " << two.err;
    const auto c = train_lines(dir / (std::string(name) + "/metrics.jsonl"));
    ASSERT_EQ(a.size(), c.size()) << name;
    for (size_t s = 0; s < a.size(); ++s) {
      EXPECT_EQ(a[s]["trained_tokens"], c[s]["trained_tokens"]) << name;
      EXPECT_EQ(c[s]["ranks"], 2) << name;
      for (const char* k : {"loss", "grad_norm"})
        EXPECT_NEAR(c[s][k].get<double>(), a[s][k].get<double>(), 1e-6 * std::fabs(a[s][k].get<double>()))
            << name << " step " << s + 1 << " " << k;
    }
    const auto va = lines_of_type(dir / "one/metrics.jsonl", "val"), vc = lines_of_type(dir / (std::string(name) + "/metrics.jsonl"), "val");
    ASSERT_EQ(va.size(), vc.size()) << name;
    ASSERT_GT(va.size(), 0u);
    for (size_t i = 0; i < va.size(); ++i)
      EXPECT_NEAR(vc[i]["val_loss"].get<double>(), va[i]["val_loss"].get<double>(), 1e-6 * va[i]["val_loss"].get<double>()) << name;
  }
}

// `mpirun -np N seek run` (inference across ranks): the fixtures' 3 layers split into 2 and 3
// pipeline stages, and each stage's routed experts across 2 ranks (expert parallelism alone on 2
// ranks, with 2 stages on 4), each rank loading only its own tensors, generate the tokens one
// process does (BF16, the sharded FP8 release, V2-Lite), and `seek logits` gives the same floats.
TEST(Distributed, PipelineStagesRunTheSameTokensAsOneProcess) {
  struct Layout {
    int np, expert_ranks;
  };
  for (const char* fixture : {"v3-tiny", "v3-tiny-fp8", "v2-lite-tiny"}) {
    TempDir dir;
    link_model(fixture, dir, true);
    const std::vector<std::string> args = {SEEK_BINARY, "run", dir.str(), "--raw", "-p", "1 2 3 4 5",
                                           "-n", "16", "--temperature", "0"};
    Result one = run_program(args);
    ASSERT_EQ(one.code, 0) << fixture << ": " << one.err;
    ASSERT_FALSE(one.out.empty());
    const auto whole = model::Model::load(dir.str());
    const uint64_t whole_bytes = whole->weights_store().total_bytes();
    const int64_t n_experts = whole->config().n_routed_experts;
    for (Layout lay : {Layout{2, 1}, Layout{3, 1}, Layout{2, 2}, Layout{4, 2}}) {
      const int np = lay.np, E = lay.expert_ranks;
      const std::string what = fmt::format("{} on {} ranks, {} per stage", fixture, np, E);
      std::vector<std::string> cmd = mpirun(np);
      cmd.insert(cmd.end(), args.begin(), args.end());
      cmd.insert(cmd.end(), {"--expert-ranks", std::to_string(E)});
      Result r = run_program(cmd);
      ASSERT_EQ(r.code, 0) << what << ": " << r.err;
      // mpirun gives rank 0 a terminal, so the answer ends with a newline there.
      std::string out = r.out;
      if (!out.empty() && out.back() == '\n' && one.out.back() != '\n') out.pop_back();
      EXPECT_EQ(out, one.out) << what;
      // Each rank names its layers and what it loaded: the stages' layers tile the model, a
      // stage's ranks tile its routed experts, and together the ranks read no more than the
      // whole checkpoint (the MTP module only on rank 0 when it holds every layer), each a part.
      int64_t next = 0, stage_begin = 0;
      uint64_t bytes = 0;
      for (int q = 0; q < np; ++q) {
        const std::string tag = fmt::format("seek: rank {} of {}: layers [", q, np);
        const size_t at = r.err.find(tag);
        ASSERT_NE(at, std::string::npos) << r.err;
        const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
        long long a = 0, b = 0, layers = 0, tensors = 0;
        unsigned long long n = 0;
        ASSERT_EQ(std::sscanf(line.c_str() + tag.size(), "%lld, %lld) of %lld, %lld tensors, %llu bytes",
                              &a, &b, &layers, &tensors, &n), 5) << line;
        if (q % E == 0) {
          EXPECT_EQ(a, next) << what;
          EXPECT_GT(b, a);
          stage_begin = a;
          next = b;
        } else {
          EXPECT_EQ(a, stage_begin) << line;  // an expert rank holds its stage's layers
        }
        EXPECT_LT(n, whole_bytes) << what << " rank " << q;
        bytes += n;
        if (E > 1) {
          const std::string experts = fmt::format("{}routed experts [{}, {})", q % E ? "only " : "",
                                                  q % E * n_experts / E, (q % E + 1) * n_experts / E);
          EXPECT_TRUE(contains(line, experts)) << line;
        }
      }
      EXPECT_EQ(next, whole->config().num_hidden_layers);
      EXPECT_LE(bytes, whole_bytes) << what;
      if (np / E > 1) EXPECT_TRUE(contains(r.err, fmt::format("{} pipeline stages: 16 forwards", np / E))) << r.err;
      if (E > 1) EXPECT_TRUE(contains(r.err, fmt::format("routed experts across {} ranks: 16 forwards", E))) << r.err;
    }
  }
  // Logits of a prompt, float for float.
  TempDir dir;
  link_model("v3-tiny", dir, true);
  Result one = run_seek({"logits", dir.str(), "--ids", "1,5,9,200,7", "-o", dir / "one.f32"});
  ASSERT_EQ(one.code, 0) << one.err;
  std::vector<std::string> cmd = mpirun(3);
  cmd.insert(cmd.end(), {SEEK_BINARY, "logits", dir.str(), "--ids", "1,5,9,200,7", "-o", dir / "three.f32"});
  Result three = run_program(cmd);
  ASSERT_EQ(three.code, 0) << three.err;
  EXPECT_EQ(slurp(dir / "one.f32"), slurp(dir / "three.f32"));
  // Speculative decoding does not cross stages (yet): a clear error, not a hang.
  cmd = mpirun(2);
  cmd.insert(cmd.end(), {SEEK_BINARY, "run", dir.str(), "--raw", "-p", "1 2", "-n", "4", "--speculative"});
  Result spec = run_program(cmd);
  EXPECT_NE(spec.code, 0);
  EXPECT_TRUE(contains(spec.err, "speculative decoding does not run across pipeline stages")) << spec.err;
  // With the experts across ranks and every layer on rank 0, the MTP draft runs there: the
  // same tokens as one process.
  const std::vector<std::string> spec_args = {SEEK_BINARY, "run", dir.str(), "--raw", "-p", "1 2 3",
                                              "-n", "12", "--temperature", "0", "--speculative"};
  Result spec_one = run_program(spec_args);
  ASSERT_EQ(spec_one.code, 0) << spec_one.err;
  cmd = mpirun(2);
  cmd.insert(cmd.end(), spec_args.begin(), spec_args.end());
  cmd.insert(cmd.end(), {"--expert-ranks", "2"});
  Result spec_ep = run_program(cmd);
  ASSERT_EQ(spec_ep.code, 0) << spec_ep.err;
  std::string out = spec_ep.out;
  if (!out.empty() && out.back() == '\n' && spec_one.out.back() != '\n') out.pop_back();
  EXPECT_EQ(out, spec_one.out);
  // Layouts that do not divide: clear errors.
  for (const auto& [np, e, message] : {std::tuple{2, "3", "2 ranks (mpirun -np) do not split into groups of 3"},
                                       std::tuple{3, "3", "16 routed experts do not split across 3 expert ranks"}}) {
    cmd = mpirun(np);
    cmd.insert(cmd.end(), {SEEK_BINARY, "run", dir.str(), "--raw", "-p", "1 2", "-n", "4", "--expert-ranks", e});
    Result bad = run_program(cmd);
    EXPECT_NE(bad.code, 0);
    EXPECT_TRUE(contains(bad.err, message)) << bad.err;
  }
}

// `seek simulate` on the shipped V3 layout: both schedules side by side; a bad file is an error.
TEST(Distributed, SimulatePrintsTheV3StepForBothSchedules) {
  const std::string cfg = std::string(SEEK_SOURCE_DIR) + "/configs/simulate/";
  Result r = run_seek({"simulate", "--config", cfg + "deepseek-v3.json", "--hardware", cfg + "h800.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| per rank | 1f1b | dualpipe |")) << r.out;
  EXPECT_TRUE(contains(r.out, "2048 GPUs = pipeline 16 × data 128 (expert 64")) << r.out;
  Result d = run_seek({"simulate", "--config", cfg + "deepseek-v3.json", "--hardware", cfg + "h800.json",
                       "--schedule", "dualpipe", "--describe"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_TRUE(contains(d.out, "rank 15: F1.0")) << d.out;
  Result bad = run_seek({"simulate", "--config", cfg + "h800.json", "--hardware", cfg + "h800.json"});
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.err, "h800.json: unknown field")) << bad.err;
}

TEST(Distributed, ConfigThatDoesNotMatchTheJobIsAClearError) {
  TempDir dir;
  struct Case {
    const char* name;
    const char* parallel;
    int ranks;
    const char* error;
  };
  for (const Case& c : {Case{"dp3", R"({"data": 3})", 2, "parallel: \"data\" is 3 but the job has 2 ranks"},
                        Case{"ep", R"({"expert": 2})", 1, "parallel: \"expert\" 2 does not divide the job's 1 data-parallel ranks"},
                        Case{"ep3", R"({"expert": 3})", 3, "the model's 4 routed experts do not divide among 3 ranks"},
                        Case{"pp", R"({"pipeline": 2})", 1, "parallel: \"pipeline\" 2 does not divide the job's 1 rank"},
                        Case{"pp3", R"({"pipeline": 3})", 3, "\"pipeline\" 3 stages for a model of 2 layers"},
                        Case{"dual", R"({"pipeline": 2, "schedule": "dualpipe"})", 2,
                             "dualpipe: the micro-batches per step must be even and at least twice the stages (4), got 1 (the micro-batches are train: \"grad_accum\")"},
                        Case{"sched", R"({"pipeline": 2, "schedule": "gpipe"})", 2, "\"schedule\" must be \"1f1b\" or \"dualpipe\", got \"gpipe\""},
                        Case{"split", R"({"pipeline": 2, "stage_layers": [2, 1]})", 2, "\"stage_layers\": pipeline: stage layers 2, 1 for 2 stages of a 2-layer model"}}) {
    write_run(dir, c.name, 2, std::string(R"( "parallel": )") + c.parallel + ",");
    std::vector<std::string> cmd = c.ranks > 1 ? mpirun(c.ranks) : std::vector<std::string>{};
    cmd.insert(cmd.end(), {SEEK_BINARY, "train", "--config", dir / (std::string(c.name) + ".json"), "--quiet"});
    Result r = run_program(cmd);
    EXPECT_NE(r.code, 0) << c.name;
    EXPECT_TRUE(contains(r.err, c.error)) << c.name << ": " << r.err;
  }
}

// A rank killed mid-run: mpirun ends the whole job (no rank waits forever in a collective) and
// says which rank died; the run then resumes from its last checkpoint on 4 ranks (ZeRO-1: the
// optimizer state saved whole is sharded anew) and finishes.
TEST(Distributed, ARankThatDiesEndsTheJobAndTheRunResumesOnOtherRanks) {
  TempDir dir;
  write_run(dir, "run", 1000000, R"( "parallel": {"zero": 1},)", /*save_every=*/2);
  // Each rank records its pid (then becomes seek: same pid).
  std::vector<std::string> cmd = mpirun(2);
  cmd.insert(cmd.end(), {"/bin/sh", "-c",
                         "echo $$ > " + dir / "pid.tmp.$OMPI_COMM_WORLD_RANK" + " && mv " +
                             dir / "pid.tmp.$OMPI_COMM_WORLD_RANK" + " " +
                             dir / "pid.$OMPI_COMM_WORLD_RANK" + " && exec " + SEEK_BINARY +
                             " train --config " + dir / "run.json" + " --quiet"});
  std::vector<char*> argv;
  for (auto& a : cmd) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, (dir / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, (dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t job = 0;
  ASSERT_EQ(posix_spawn(&job, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  // Wait until the run is known to be in flight with a checkpoint: `latest` exists and a later
  // step is logged.
  const auto in_flight = [&] {
    if (!fs::exists(dir / "run/latest") || !fs::exists(dir / "pid.1")) return false;
    const auto lines = train_lines(dir / "run/metrics.jsonl");
    return !lines.empty() && lines.back()["step"].get<int64_t>() >= 3;
  };
  int status = 0;
  for (int i = 0; i < 60000 && !in_flight(); ++i) {
    ASSERT_EQ(waitpid(job, &status, WNOHANG), 0) << "the job ended early: " << slurp(dir / "err");
    usleep(10000);
  }
  ASSERT_TRUE(in_flight()) << "no checkpoint after 600 s: " << slurp(dir / "err");
  const pid_t victim = pid_t(std::stol(slurp(dir / "pid.1")));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // The job must end on its own (a hang would be a failure: the test gives it 120 s).
  bool ended = false;
  for (int i = 0; i < 12000 && !ended; ++i) {
    ended = waitpid(job, &status, WNOHANG) == job;
    if (!ended) usleep(10000);
  }
  if (!ended) {
    kill(job, SIGKILL);
    waitpid(job, &status, 0);
  }
  ASSERT_TRUE(ended) << "the job did not end within 120 s of a rank's death";
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(contains(slurp(dir / "err"), "rank 1")) << slurp(dir / "err");

  // Resume on 4 ranks for two more steps after the last checkpoint.
  const std::string latest = fs::canonical(dir / "run/latest").filename().string();
  const int64_t at = std::stoll(latest.substr(latest.rfind('-') + 1));
  nlohmann::json cfg = nlohmann::json::parse(slurp(dir / "run.json"));
  cfg["train"]["steps"] = at + 2;
  spit(dir / "run.json", cfg.dump());
  std::vector<std::string> resume = mpirun(4);
  resume.insert(resume.end(), {SEEK_BINARY, "train", "--config", dir / "run.json", "--resume", "--quiet"});
  Result r = run_program(resume);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "run/final/model.safetensors"));
  const auto lines = train_lines(dir / "run/metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["step"], at + 2);
  EXPECT_EQ(lines.back()["ranks"], 4);
}

}  // namespace
}  // namespace seek::cli_test
