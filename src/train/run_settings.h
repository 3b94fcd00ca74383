// The fields of a config's "train" section that the trainers share (`seek train`/`sft`,
// `seek rm`, `seek grpo`): read, defaulted and checked in one place. Each trainer's config
// derives from one of these structs and still checks its own set of allowed keys (e.g. GRPO
// takes no "min_lr"), so a key it does not allow never reaches read().
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_config.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "train/optimizer.h"

namespace seek::train {

// The optimizer, the learning-rate schedule and the run's cadence: "lr", "min_lr" (default
// lr / 10), "warmup", "schedule" (cosine|wsd|constant), "wsd_decay", "weight_decay", "beta1",
// "beta2", "grad_clip", "seed", "log_every", "eval_every", "save_every", "keep_checkpoints"
// (0: all), "threads" (0: all cores), "precision" (fp32|bf16|fp8: the linear layers' GEMMs, see
// model::ObjectiveOptions::precision; master weights and gradients stay float32), "moments"
// (fp32|bf16: AdamW's m and v; V3 keeps them in bf16).
struct RunSettings {
  Schedule schedule;
  AdamWConfig adamw;
  uint64_t seed = 1;
  int64_t log_every = 10, eval_every = 100, save_every = 250, keep = 2;
  int threads = 0;
  std::string precision = "fp32";
  std::string moments = "fp32";
  kernels::Precision gemm_precision() const;  // of `precision` (checked)

  std::vector<json_config::Field> fields();  // by key: the one list read() and keys() use
  static std::set<std::string> keys();
  // Reads the fields `t` has; `where` names the section in errors ("FILE: train").
  void read(const nlohmann::json& t, const std::string& where);
  // Ranges; eval_every is the deriving trainer's to check (GRPO allows 0: never).
  void check(const std::string& where) const;
  // Before a run's first work: the threads set; a fresh run refuses an `out` that holds
  // checkpoints ("OUT already holds a `kind` run") and a resumed one an `out` that has none.
  void start(const std::string& out, bool resume, const char* kind) const;
};

// What `seek train`/`sft` and `seek rm` add, training on batches of a data set: "batch_size",
// "grad_accum", "bias_update_speed" (0: the routers' biases frozen), "balance_alpha",
// "recompute", "init_std" (of freshly initialized weights) and "save_dtype" (f32|bf16|fp8).
struct ModelRunSettings : RunSettings {
  int64_t batch_size = 8, grad_accum = 1;
  double bias_update_speed = 0.001, balance_alpha = 0.0, init_std = 0.02;
  bool recompute = false;
  std::string save_dtype;  // resolved by resolve_save_dtype (never empty after it)

  std::vector<json_config::Field> model_fields();  // these, beside RunSettings::fields()
  static std::set<std::string> keys();
  void read(const nlohmann::json& t, const std::string& where);
  void check(const std::string& where) const;  // also eval_every > 0
  // An unset save_dtype becomes the init checkpoint's dtype (f32 without one); checks the name.
  void resolve_save_dtype(const model::ModelConfig* init, const std::string& where);
};

}  // namespace seek::train
