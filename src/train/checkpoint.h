// Checkpoints: a Hugging Face model directory (config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json) that `seek run` loads as it is, plus training_state.bin with everything
// else an exact resume needs (AdamW moments, step, tokens seen, the data loader's position).
//
// model.safetensors holds the weights in the run's save dtype: F32 (the master weights
// themselves), BF16 (1-D router biases stay F32, as in DeepSeek's releases) or the FP8 release
// format (the *_proj matrices F8_E4M3 + NAME_scale_inv per 128×128 block, the rest BF16,
// quantization_config in config.json). When the file is not F32, training_state.bin also holds
// the float32 master weights (format SEEKTST2), so a resume continues from them exactly.
//
// Atomicity: a checkpoint is written into OUT/.tmp-NAME-PID, every file fsynced, then renamed
// to OUT/NAME in one step and OUT/latest (a symlink) swapped to it with another rename. A
// process killed at any point leaves the previous checkpoint and `latest` untouched; a failed
// save (disk full, ...) removes its temporary directory and reports which file failed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/params.h"
#include "train/data.h"

namespace seek::train {

enum class SaveDType { F32, BF16, FP8 };

// "f32" | "bf16" | "fp8" (the names the training config uses); false if none.
bool parse_save_dtype(const std::string& s, SaveDType* out);
const char* save_dtype_name(SaveDType d);
// The dtype a model's own checkpoint has: FP8 for the block-quantized release, F32 for a float32
// one, else BF16. A fine-tuned model is saved in it unless the config says otherwise.
SaveDType model_save_dtype(const model::ModelConfig& mc);

struct TrainState {
  int64_t step = 0;     // optimizer steps done
  int64_t tokens = 0;   // training tokens consumed
  DataState data;
  std::vector<float> m, v;  // AdamW moments (Params layout)
  std::vector<float> master;  // the float32 weights when model.safetensors is BF16/FP8; else empty
};

// A float32 tensor saved after the model's in model.safetensors, always as F32 (e.g. a reward
// model's score.weight).
struct ExtraTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // Π shape values
};

// Writes OUT/NAME (replacing an older one of that name) and points OUT/latest at it. Keeps the
// newest `keep` step-* checkpoints (0: all). `extra` files (name → contents) are added as is.
void save_checkpoint(const std::string& out, const std::string& name, const model::Params& p,
                     const TrainState& st, const std::string& tokenizer_dir,
                     const std::vector<std::pair<std::string, std::string>>& extra, int keep,
                     SaveDType dtype = SaveDType::F32,
                     const std::vector<ExtraTensor>& extra_tensors = {});

// Tests only: called inside save_checkpoint with the checkpoint's name at "weights" (the weights
// are in the temporary directory, nothing is renamed yet), so a test can stop or kill the
// process in the middle of a save deterministically. Empty: no hook (the default).
void set_save_hook(std::function<void(const std::string& name, const char* stage)> hook);

// Reads DIR/training_state.bin; checks it matches `n_params`.
TrainState load_train_state(const std::string& dir, size_t n_params);

}  // namespace seek::train
