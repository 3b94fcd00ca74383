// The training loop end to end on a tiny model: data preparation, loss goes down, checkpoints
// load with the inference loader, exact resume, atomic saves under kill -9, bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "model/test_configs.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace seek;
using namespace seek::train;
namespace fs = std::filesystem;

namespace {

std::string tmpdir(const std::string& name) {
  const std::string d = fs::temp_directory_path().string() + "/seek_train_test_" + name + "_" + std::to_string(getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const char* kCorpus =
    "The quick brown fox jumps over the lazy dog. A stitch in time saves nine.\n"
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software.\n"
    "THE SOFTWARE IS PROVIDED AS IS, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.\n\n";

// A tiny DeepSeek-V3-shaped model (MoE + MTP) and a short recipe.
std::string config(const std::string& dir, int64_t steps, const std::string& extra_train = "") {
  std::string corpus;
  for (int i = 0; i < 60; ++i) corpus += std::to_string(i) + ". " + kCorpus;
  write_file_atomic(dir + "/corpus.txt", corpus);
  return R"({
    // tiny test model
    "model": )" + model::test::tiny_v3_model_json(256) + R"(,
    "data": {"files": ["corpus.txt"], "vocab_size": 320, "val_every": 10, "doc_bytes": 600},
    "train": {"seq_len": 32, "batch_size": 4, "steps": )" + std::to_string(steps) + R"(, "lr": 3e-3, "warmup": 5,
              "log_every": 1, "eval_every": 5, "eval_batches": 2, "save_every": 5, "bias_update_speed": 0.01)" +
         extra_train + R"(},
    "out": "run"
  })";
}

TrainConfig write_config(const std::string& dir, int64_t steps, const std::string& extra = "") {
  write_file_atomic(dir + "/train.json", config(dir, steps, extra));
  return TrainConfig::load(dir + "/train.json");
}

std::vector<std::string> train_losses(const std::string& metrics) {
  std::vector<std::string> out;
  std::istringstream in(read_file(metrics));
  std::string line;
  std::map<int64_t, std::string> by_step;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") by_step[j["step"].get<int64_t>()] = j["loss"].dump();  // exact digits
  }
  for (auto& [s, l] : by_step) out.push_back(l);
  return out;
}

}  // namespace

TEST(Trainer, LearnsAndWritesAModelTheInferenceLoaderRuns) {
  const std::string dir = tmpdir("learn");
  TrainConfig c = write_config(dir, 30);
  RunOptions o;
  o.progress = false;
  const std::string ckpt = run_training(c, o);
  auto losses = train_losses(c.out + "/metrics.jsonl");
  ASSERT_EQ(losses.size(), 30u);
  EXPECT_LT(std::stod(losses.back()), std::stod(losses.front()) - 1.0);
  // The checkpoint is an HF directory the engine loads and runs.
  auto m = model::Model::load(ckpt);
  EXPECT_EQ(m->config().num_nextn_predict_layers, 1);
  auto tok = tokenizer::Tokenizer::load(ckpt);
  std::vector<int32_t> ids = tok.encode("The quick brown", true);
  EXPECT_EQ(ids[0], 0);  // BOS
  model::KVCache cache(m->config(), 1, 64);
  model::Batch b;
  b.tokens = ids;
  b.seqs.push_back({0, 0, int64_t(ids.size()), false});
  std::vector<float> logits;
  model::forward(*m, cache, b, logits);
  EXPECT_EQ(int64_t(logits.size()), m->config().vocab_size);
  EXPECT_TRUE(fs::exists(c.out + "/report.html"));
  EXPECT_NE(read_file(c.out + "/report.html").find("<svg"), std::string::npos);
  EXPECT_TRUE(fs::exists(c.out + "/latest/model.safetensors"));
  fs::remove_all(dir);
}

// "precision": "bf16" and "fp8" (issue 15): the same run with the linear layers' GEMMs on bf16
// operands, or V3's FP8 GEMMs, learns as float32 does (V3 reports FP8 within 0.25% of BF16 over
// a long run; after 30 steps of this tiny model bf16 was within 2e-5 and fp8 within 1.2e-4 of
// fp32, relative; the bound is 0.5%), yet each is a different computation.
TEST(Trainer, MixedPrecisionTracksFloat32) {
  std::vector<std::vector<std::string>> runs;
  for (const char* prec : {"fp32", "bf16", "fp8"}) {
    const std::string dir = tmpdir(std::string("prec_") + prec);
    TrainConfig c = write_config(dir, 30, std::string(R"(, "precision": ")") + prec + "\"");
    RunOptions o;
    o.progress = false;
    run_training(c, o);
    runs.push_back(train_losses(c.out + "/metrics.jsonl"));
    fs::remove_all(dir);
  }
  const double l32 = std::stod(runs[0].back());
  for (size_t i : {1u, 2u}) {
    ASSERT_EQ(runs[i].size(), 30u);
    EXPECT_NE(runs[0].back(), runs[i].back());
    const double l = std::stod(runs[i].back());
    EXPECT_LT(std::fabs(l - l32), 0.005 * l32) << "fp32 " << l32 << ", run " << i << ": " << l;
    EXPECT_LT(l, std::stod(runs[i].front()) - 1.0);
  }
}

// "moments": "bf16" (V3's AdamW state): the loss after 30 steps within 0.5% of float32 moments,
// and a run stopped and resumed equals the uninterrupted one bit for bit (the checkpoint holds
// the bf16 moments exactly).
TEST(Trainer, Bf16MomentsTrackFloat32AndResumeExactly) {
  RunOptions o;
  o.progress = false;
  const std::string d32 = tmpdir("mom32"), a = tmpdir("mom16"), b = tmpdir("mom16r");
  TrainConfig c32 = write_config(d32, 30, "");
  run_training(c32, o);
  TrainConfig ca = write_config(a, 30, R"(, "moments": "bf16")");
  run_training(ca, o);
  const std::vector<std::string> l32 = train_losses(c32.out + "/metrics.jsonl"), l16 = train_losses(ca.out + "/metrics.jsonl");
  ASSERT_EQ(l16.size(), 30u);
  EXPECT_NE(l32.back(), l16.back());
  EXPECT_LT(std::fabs(std::stod(l16.back()) - std::stod(l32.back())), 0.005 * std::stod(l32.back()));
  TrainConfig cb = write_config(b, 30, R"(, "moments": "bf16")");
  o.stop_after = 13;
  run_training(cb, o);
  o.stop_after = -1;
  o.resume = true;
  run_training(cb, o);
  EXPECT_EQ(l16, train_losses(cb.out + "/metrics.jsonl"));
  EXPECT_EQ(read_file(ca.out + "/final/model.safetensors"), read_file(cb.out + "/final/model.safetensors"));
  for (const std::string& d : {d32, a, b}) fs::remove_all(d);
}

TEST(Trainer, ResumeReproducesTheUninterruptedRunBitForBit) {
  const std::string a = tmpdir("full"), b = tmpdir("resumed");
  RunOptions o;
  o.progress = false;
  TrainConfig ca = write_config(a, 14, R"(, "grad_accum": 2, "balance_alpha": 0.001)");
  run_training(ca, o);
  TrainConfig cb = write_config(b, 14, R"(, "grad_accum": 2, "balance_alpha": 0.001)");
  o.stop_after = 7;  // not a multiple of save_every: the stop itself checkpoints
  run_training(cb, o);
  o.stop_after = -1;
  o.resume = true;
  run_training(cb, o);
  EXPECT_EQ(train_losses(ca.out + "/metrics.jsonl"), train_losses(cb.out + "/metrics.jsonl"));
  EXPECT_EQ(read_file(ca.out + "/final/model.safetensors"), read_file(cb.out + "/final/model.safetensors"));
  fs::remove_all(a);
  fs::remove_all(b);
}

// The process that gets killed: runs only when the kill test starts this binary for it (a fresh
// process; forking a process that has run OpenMP regions is not safe).
TEST(Trainer, KillTargetChild) {
  const char* dir = std::getenv("SEEK_KILL_TEST_DIR");
  if (!dir) GTEST_SKIP() << "helper of KillDuringSaveKeepsThePreviousCheckpoint";
  // The second checkpoint's save stops once its weights are written (nothing renamed yet) and
  // says so; the parent kills this process there.
  set_save_hook([dir = std::string(dir), saves = 0](const std::string& name,
                                                     const char* stage) mutable {
    if (std::string(stage) != "weights" || ++saves < 2) return;
    write_file_atomic(dir + "/in-save", name);
    for (;;) pause();
  });
  RunOptions o;
  o.progress = false;
  run_training(TrainConfig::load(std::string(dir) + "/train.json"), o);
}

TEST(Trainer, KillDuringSaveKeepsThePreviousCheckpoint) {
  const std::string dir = tmpdir("kill");
  TrainConfig c = write_config(dir, 400, R"(, "save_every": 1, "eval_every": 1000)");
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("SEEK_KILL_TEST_DIR", dir.c_str(), 1);
    execl("/proc/self/exe", "seek_train_tests", "--gtest_filter=Trainer.KillTargetChild", nullptr);
    _exit(127);
  }
  // Kill the child inside its second save (checkpoints are written every step): it announces
  // that it has stopped there, after the weights are written and before anything is renamed.
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 30000 && !fs::exists(dir + "/in-save"); ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    usleep(10000);
  }
  ASSERT_FALSE(exited) << "the child ended before its second save";
  ASSERT_TRUE(fs::exists(dir + "/in-save")) << "the child did not reach its second save in 300 s";
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before the kill";
  EXPECT_EQ(fs::canonical(c.out + "/latest").filename(), "step-000001");  // not the one in progress
  ASSERT_TRUE(fs::exists(c.out + "/latest")) << "no checkpoint was written before the kill";
  const std::string latest = fs::canonical(c.out + "/latest").string();
  auto m = model::Model::load(latest);  // complete and loadable
  EXPECT_GT(m->config().hidden_size, 0);
  // Resume works from it.
  RunOptions o;
  o.progress = false;
  o.resume = true;
  TrainConfig c2 = c;
  c2.steps = std::stoll(latest.substr(latest.rfind('-') + 1)) + 2;
  c2.schedule.total = c2.steps;
  run_training(c2, o);
  EXPECT_TRUE(fs::exists(c.out + "/final/model.safetensors"));
  fs::remove_all(dir);
}

TEST(Trainer, BadInputGetsClearErrors) {
  const std::string dir = tmpdir("bad");
  auto err = [&](const std::string& text) -> std::string {
    write_file_atomic(dir + "/c.json", text);
    try {
      TrainConfig c = TrainConfig::load(dir + "/c.json");
      RunOptions o;
      o.progress = false;
      run_training(c, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string good = config(dir, 2);
  EXPECT_NE(err("{ not json").find("invalid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"model": {}, "out": "x"})").find("hidden_size"), std::string::npos);
  std::string bad_groups = good;
  bad_groups.replace(bad_groups.find("\"n_group\": 2"), 12, "\"n_group\": 3");
  EXPECT_NE(err(bad_groups).find("not divisible by n_group"), std::string::npos);
  std::string typo = good;
  typo.replace(typo.find("\"seq_len\""), 9, "\"seqlen\"");
  EXPECT_NE(err(typo).find("unknown field \"seqlen\""), std::string::npos);
  std::string zero = good;
  zero.replace(zero.find("\"batch_size\": 4"), 15, "\"batch_size\": 0");
  EXPECT_NE(err(zero).find("batch_size"), std::string::npos);
  std::string prec = good;
  prec.replace(prec.find("\"seq_len\""), 9, "\"precision\": \"fp16\", \"seq_len\"");
  EXPECT_NE(err(prec).find("\"precision\" must be fp32, bf16 or fp8, got \"fp16\""), std::string::npos);
  // Corpora: empty, not UTF-8, too short for one sequence.
  std::string files = good;
  files.replace(files.find("[\"corpus.txt\"]"), 14, "[\"empty.txt\"]");
  write_file_atomic(dir + "/empty.txt", "");
  EXPECT_NE(err(files).find("empty.txt is empty"), std::string::npos);
  write_file_atomic(dir + "/empty.txt", std::string("abc\xff\xfe def"));
  EXPECT_NE(err(files).find("not valid UTF-8"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Trainer, RefusesToOverwriteAnExistingRun) {
  const std::string dir = tmpdir("twice");
  TrainConfig c = write_config(dir, 2);
  RunOptions o;
  o.progress = false;
  run_training(c, o);
  EXPECT_THROW(run_training(c, o), Error);
  fs::remove_all(dir);
}

// A full disk, simulated with RLIMIT_FSIZE (writes past the limit fail with EFBIG) in a fresh
// process: the save fails with a clear error, and the checkpoint saved before stays intact.
TEST(Trainer, DiskFullTargetChild) {
  const char* dir = std::getenv("SEEK_DISK_FULL_TEST_DIR");
  if (!dir) GTEST_SKIP() << "helper of DiskFullKeepsThePreviousCheckpoint";
  signal(SIGXFSZ, SIG_IGN);
  rlimit lim{64 << 10, 64 << 10};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  RunOptions o;
  o.progress = false;
  o.resume = true;
  try {
    run_training(TrainConfig::load(std::string(dir) + "/train.json"), o);
    ADD_FAILURE() << "training finished although no checkpoint fits on the disk";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("not saved (earlier checkpoints are intact)"), std::string::npos) << msg;
    std::fprintf(stderr, "disk full: %s\n", msg.c_str());
  }
}

TEST(Trainer, DiskFullKeepsThePreviousCheckpoint) {
  const std::string dir = tmpdir("diskfull");
  TrainConfig c = write_config(dir, 10, R"(, "save_every": 5, "eval_every": 1000)");
  RunOptions o;
  o.progress = false;
  o.stop_after = 5;
  run_training(c, o);
  const std::string latest = fs::canonical(c.out + "/latest").string();
  const std::string before = read_file(latest + "/model.safetensors");
  ASSERT_GT(before.size(), size_t(64 << 10)) << "the model must not fit under the file-size limit";

  const pid_t pid = fork();
  if (pid == 0) {
    setenv("SEEK_DISK_FULL_TEST_DIR", dir.c_str(), 1);
    execl("/proc/self/exe", "seek_train_tests", "--gtest_filter=Trainer.DiskFullTargetChild",
          nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's checks failed";
  EXPECT_EQ(fs::canonical(c.out + "/latest").string(), latest);
  EXPECT_EQ(read_file(latest + "/model.safetensors"), before);
  auto m = model::Model::load(latest);
  EXPECT_GT(m->config().hidden_size, 0);
  fs::remove_all(dir);
}
