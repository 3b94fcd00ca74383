#include "train/run_settings.h"

#include <omp.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/json_config.h"
#include "core/memory.h"
#include "train/checkpoint.h"

namespace seek::train {

std::vector<json_config::Field> RunSettings::fields() {
  return {{"lr", &schedule.lr}, {"min_lr", &schedule.min_lr}, {"warmup", &schedule.warmup},
          {"schedule", &schedule.kind}, {"wsd_decay", &schedule.decay_fraction},
          {"weight_decay", &adamw.weight_decay}, {"beta1", &adamw.beta1}, {"beta2", &adamw.beta2},
          {"grad_clip", &adamw.grad_clip}, {"seed", &seed}, {"log_every", &log_every},
          {"eval_every", &eval_every}, {"save_every", &save_every}, {"keep_checkpoints", &keep},
          {"threads", &threads}, {"precision", &precision}, {"moments", &moments}};
}

kernels::Precision RunSettings::gemm_precision() const {
  return precision == "bf16"  ? kernels::Precision::BF16
         : precision == "fp8" ? kernels::Precision::FP8
                              : kernels::Precision::F32;
}

namespace {
std::set<std::string> keys_of(const std::vector<json_config::Field>& fields) {
  std::set<std::string> k;
  for (const json_config::Field& f : fields) k.insert(f.key);
  return k;
}
}  // namespace

std::set<std::string> RunSettings::keys() { return keys_of(RunSettings().fields()); }

void RunSettings::read(const nlohmann::json& t, const std::string& where) {
  json_config::get(t, fields(), where);
  if (!t.contains("min_lr")) schedule.min_lr = schedule.lr * 0.1;
  adamw.bf16_moments = moments == "bf16";
}

void RunSettings::check(const std::string& where) const {
  if (!(schedule.lr > 0.0) || !std::isfinite(schedule.lr))
    fail("{}: \"lr\" must be positive, got {}", where, schedule.lr);
  if (schedule.kind != "cosine" && schedule.kind != "wsd" && schedule.kind != "constant")
    fail("{}: \"schedule\" must be cosine, wsd or constant, got \"{}\"", where, schedule.kind);
  if (schedule.warmup < 0) fail("{}: \"warmup\" must be >= 0", where);
  if (adamw.beta1 < 0 || adamw.beta1 >= 1) fail("{}: \"beta1\" must be in [0, 1)", where);
  if (adamw.beta2 < 0 || adamw.beta2 >= 1) fail("{}: \"beta2\" must be in [0, 1)", where);
  if (adamw.weight_decay < 0) fail("{}: \"weight_decay\" must be >= 0", where);
  if (adamw.grad_clip < 0) fail("{}: \"grad_clip\" must be >= 0 (0: no clipping)", where);
  json_config::positive(log_every, "log_every", where);
  json_config::positive(save_every, "save_every", where);
  if (keep < 0) fail("{}: \"keep_checkpoints\" must be >= 0 (0: keep all)", where);
  if (threads < 0) fail("{}: \"threads\" must be >= 0 (0: all cores)", where);
  if (precision != "fp32" && precision != "bf16" && precision != "fp8")
    fail("{}: \"precision\" must be fp32, bf16 or fp8, got \"{}\"", where, precision);
  if (moments != "fp32" && moments != "bf16")
    fail("{}: \"moments\" must be fp32 or bf16, got \"{}\"", where, moments);
}

void RunSettings::start(const std::string& out, bool resume, const char* kind) const {
  if (threads > 0) omp_set_num_threads(threads);
  retain_freed_memory();
  const bool latest_exists = std::filesystem::exists(out + "/latest");
  if (!resume && latest_exists)
    fail("{} already holds a {} run (it has checkpoints); pass --resume to continue it or choose "
         "another \"out\"", out, kind);
  if (resume && !latest_exists) fail("--resume: {} has no checkpoint to resume (no {}/latest)", out, out);
}

std::vector<json_config::Field> ModelRunSettings::model_fields() {
  return {{"batch_size", &batch_size}, {"grad_accum", &grad_accum}, {"bias_update_speed", &bias_update_speed},
          {"balance_alpha", &balance_alpha}, {"recompute", &recompute}, {"init_std", &init_std},
          {"save_dtype", &save_dtype}};
}

std::set<std::string> ModelRunSettings::keys() {
  std::set<std::string> k = RunSettings::keys();
  k.merge(keys_of(ModelRunSettings().model_fields()));
  return k;
}

void ModelRunSettings::read(const nlohmann::json& t, const std::string& where) {
  RunSettings::read(t, where);
  json_config::get(t, model_fields(), where);
}

void ModelRunSettings::check(const std::string& where) const {
  json_config::positive(batch_size, "batch_size", where);
  json_config::positive(grad_accum, "grad_accum", where);
  json_config::positive(eval_every, "eval_every", where);
  RunSettings::check(where);
  if (bias_update_speed < 0 || !std::isfinite(bias_update_speed))
    fail("{}: \"bias_update_speed\" must be >= 0 (0 freezes the routers' biases)", where);
}

void ModelRunSettings::resolve_save_dtype(const model::ModelConfig* init, const std::string& where) {
  if (save_dtype.empty()) save_dtype = save_dtype_name(init ? model_save_dtype(*init) : SaveDType::F32);
  SaveDType sd;
  if (!parse_save_dtype(save_dtype, &sd))
    fail("{}: \"save_dtype\" must be f32, bf16 or fp8, got \"{}\"", where, save_dtype);
}

}  // namespace seek::train
