// `seek sft`: supervised fine-tuning of a checkpoint on chat records (sft_data.h), through the
// same loop, optimizer, checkpoints, metrics and report as `seek train` (trainer.h).
#pragma once
#include <string>

#include "train/trainer.h"

namespace seek::train {

// `cfg` is a Kind::Sft config. With "epochs" the step count is resolved from the packed data:
// ceil(micro-batches of all epochs / grad_accum) (the last step may take a few packs of the
// next epoch). Returns the final checkpoint directory.
std::string run_sft(TrainConfig cfg, const RunOptions& opts);

}  // namespace seek::train
