// Checkpoints: a Hugging Face model directory (config.json, model.safetensors with the float32
// master weights, tokenizer.json, tokenizer_config.json) that `seek run` loads as it is, plus
// training_state.bin with everything else an exact resume needs (AdamW moments, step, tokens
// seen, the data loader's position).
//
// Atomicity: a checkpoint is written into OUT/.tmp-NAME-PID, every file fsynced, then renamed
// to OUT/NAME in one step and OUT/latest (a symlink) swapped to it with another rename. A
// process killed at any point leaves the previous checkpoint and `latest` untouched; a failed
// save (disk full, ...) removes its temporary directory and reports which file failed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/params.h"
#include "train/data.h"

namespace seek::train {

struct TrainState {
  int64_t step = 0;     // optimizer steps done
  int64_t tokens = 0;   // training tokens consumed
  DataState data;
  std::vector<float> m, v;  // AdamW moments (Params layout)
};

// Writes OUT/NAME (replacing an older one of that name) and points OUT/latest at it. Keeps the
// newest `keep` step-* checkpoints (0: all). `extra` files (name → contents) are added as is.
void save_checkpoint(const std::string& out, const std::string& name, const model::Params& p,
                     const TrainState& st, const std::string& tokenizer_dir,
                     const std::vector<std::pair<std::string, std::string>>& extra, int keep);

// Reads DIR/training_state.bin; checks it matches `n_params`.
TrainState load_train_state(const std::string& dir, size_t n_params);

}  // namespace seek::train
