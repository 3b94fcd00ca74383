// The training loop behind `seek train`: data preparation (BPE tokenizer + token shards), the
// optimizer steps with gradient accumulation, balancing-bias updates, validation, metrics,
// report and checkpoints, and exact resume.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/transformer.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/run_settings.h"

namespace seek::train {

// A training config file (JSON; // comments allowed):
//   { "init":  "MODEL_DIR" (optional: fine-tune a Hugging Face DeepSeek checkpoint, BF16/F32 or
//              the FP8 block-scaled release; its config.json gives the geometry, its weights the
//              float32 master weights (FP8 dequantized), its tokenizer the run's tokenizer),
//     "model": { HF config.json fields: hidden_size, num_hidden_layers, ... (vocab_size comes
//                from the tokenizer; with "init", any field given must equal the checkpoint's) },
//     "data":  { "files": ["corpus/", "notes.txt"] | ["@debian-docs"], "vocab_size": 2048,
//                "val_every": 20, "doc_bytes": 4096 }
//            | { "tokens": "ids.bin" (raw little-endian uint32 token ids), "order": "sequential"
//                (default for "tokens"; Loader in data.h gives the exact sequence order) |
//                "shuffled" },
//     "train": { "seq_len", "batch_size", "grad_accum", "steps", "lr", "min_lr", "warmup",
//                "schedule" (cosine|wsd|constant), "wsd_decay", "weight_decay", "beta1", "beta2",
//                "grad_clip", "mtp_lambda", "bias_update_speed" (0: biases frozen),
//                "balance_alpha", "recompute", "init_std", "seed", "log_every", "eval_every",
//                "eval_batches", "save_every", "keep_checkpoints", "threads",
//                "save_dtype" (f32|bf16|fp8; default: the init's dtype, f32 without init) },
//     "parallel": { "data": D (data-parallel ranks: the job's process count, the default),
//                   "zero": 0 | 1 (1: ZeRO-1, the optimizer state sharded over the ranks),
//                   "expert": E (ranks per expert-parallel group; divides D; default 1),
//                   "pipeline": P (pipeline stages; default 1), "schedule": "1f1b" |
//                   "dualpipe", "stage_layers": [n_0, ..., n_{P-1}] (main layers per stage;
//                   default an even split) } (optional; run under `mpirun -np D·P`),
//     "out": "runs/name" }
// Data parallelism (`mpirun -np D seek train --config C`): every rank reads the same batches
// and trains on its share of each micro-batch's sequences (batch_size must divide by D when the
// tokens carry no weights, so every share has the same number of targets); the gradients are
// summed over the ranks (ZeRO-1: reduce-scattered, each rank updates its shard of the weights
// with its shard of the optimizer state, then the weights are all-gathered), so every rank
// holds the same weights after every step, and the run equals the single-process one up to the
// order of float sums. Rank 0 writes metrics, report and checkpoints (the optimizer state
// gathered whole, so a run resumes with any number of ranks).
// Expert parallelism (V3's, inside the data-parallel group): consecutive ranks form groups of E,
// and rank r of a group runs routed experts [r·n/E, (r+1)·n/E) of every MoE layer for the tokens
// of the whole group (model/expert_parallel.h: all-to-all dispatch and combine). A rank's
// gradients of the experts it does not run are zero, so the data-parallel sum gives every rank
// the whole gradient. (Each rank still stores every expert's weights and, without ZeRO-1, their
// optimizer state: the experts' compute and activations are split, their memory not yet.) Every rank of a group must take part in each forward: a rank whose share
// of a micro-batch is empty runs the micro-batch's first sequence with zero weights, and
// validation runs on every rank, each on its share. Per step the metrics add each rank's routed
// rows ("ep_rows": its experts' load) and the rows it exchanged ("a2a_rows").
// Pipeline parallelism: the ranks form D pipelines of P consecutive ranks; rank s of a pipeline
// runs stage s (a contiguous range of the main layers; the first embeds, the last runs the
// heads, the MTP modules and the objective; DualPipe's ranks also run stage P-1-s for the
// micro-batches fed from the other end) for the grad_accum micro-batches of each step in the
// schedule's order (dist/pipeline_runtime.h). Data parallelism runs across the pipelines (the
// ranks of one stage), expert parallelism inside those. A rank's gradients outside its stages
// are zero, so the reduction over all ranks is unchanged. (Every rank still stores the whole
// model: compute and activations are split by stage, weights not yet.)
// `seek sft` (Kind::Sft) reads the same file with "init" required and
//     "data":  { "sft": "chats.jsonl" | ["a.jsonl", ...], "val": "val.jsonl" (optional),
//                "skip_bad": false (true: bad records are skipped and counted, not fatal) },
// and "train" also takes "epochs" (passes over the records, instead of "steps"; 1 if neither is
// given) and "patience" (stop after this many evaluations without a better validation loss;
// OUT/final is then the best-validation checkpoint; needs "val"). batch_size × seq_len is the
// token budget of one micro-batch of packed samples (sft_data.h).
// Relative paths are relative to the config file's directory.
struct TrainConfig : ModelRunSettings {  // the "train" fields the trainers share (run_settings.h)
  enum class Kind { Pretrain, Sft };
  Kind kind = Kind::Pretrain;
  nlohmann::json model;
  std::string init;         // checkpoint to fine-tune ("" = random init)
  std::vector<std::string> files;
  std::string tokens;       // raw token file ("" = tokenize `files`)
  bool sequential = false;  // data order
  int64_t vocab_size = 2048, val_every = 20, doc_bytes = 4096;
  int64_t seq_len = 128, steps = 500;
  double mtp_lambda = 0.3;
  int64_t eval_batches = 8;
  std::string out;
  std::string source;  // the file it came from
  // Kind::Sft only.
  std::vector<std::string> sft_files;
  std::string sft_val;
  bool skip_bad = false;
  int64_t epochs = 0;    // resolved to `steps` once the records are packed (0: "steps" given)
  int64_t patience = 0;  // 0: off
  // "parallel"
  int64_t data_parallel = 0;  // 0: as many as the job has ranks
  int64_t zero = 0;
  int64_t expert_parallel = 1;  // ranks per expert-parallel group (divides the data-parallel ranks)
  int64_t pipeline_parallel = 1;  // stages P (the job's ranks are data × pipeline)
  std::string pipeline_schedule = "1f1b";  // "1f1b" | "dualpipe"
  std::vector<int64_t> stage_layers;  // main layers per stage (empty: an even split)

  // Parses and checks everything up front: unknown keys, wrong types, non-positive sizes,
  // geometry that does not divide or contradicts the init checkpoint get an error naming the
  // file and the field.
  static TrainConfig parse(const std::string& text, const std::string& source, Kind kind = Kind::Pretrain);
  static TrainConfig load(const std::string& path, Kind kind = Kind::Pretrain);
};

// The model a run trains: the init checkpoint's config.json, or "model" with `vocab_size`.
model::ModelConfig init_model_config(const TrainConfig& c, int64_t vocab_size);

struct RunOptions {
  bool resume = false;        // continue OUT/latest (exactly: same losses as without the stop)
  int64_t stop_after = -1;    // stop (and checkpoint) after this many steps in total (testing)
  bool progress = true;       // progress bar / log lines on stderr
};

// Runs (or resumes) the pretraining / fine-tuning on windows of token data; returns the final
// checkpoint directory.
std::string run_training(const TrainConfig& cfg, const RunOptions& opts);

// What the training loop runs on: the model, where its tokenizer lives, the micro-batches and
// the validation. run_training builds it from token shards, run_sft (sft.h) from chat records.
struct TrainInputs {
  model::ModelConfig model;
  std::string tokenizer_dir;   // copied into every checkpoint
  BatchSource* train = nullptr;
  // The validation loss of the current weights given a forward (no backward) on a batch; NAN
  // when there is nothing to validate on. Empty: no validation.
  std::function<double(const std::function<model::StepResult(const model::TokenBatch&)>& forward)> validate;
  std::string name = "seek train";  // in progress lines and the report title
  nlohmann::json data_info;         // if set: the first line of a fresh run's metrics.jsonl
};

// Before any work: threads set, OUT created; a fresh run refuses an OUT that holds checkpoints
// and --resume one that has none.
void prepare_out(const TrainConfig& cfg, const RunOptions& opts);

// The loop both commands share: optimizer steps of grad_accum micro-batches (a step whose
// batches carry weights, i.e. SFT masks, is normalized by the whole step's Σ weight, so its loss
// is the mean over the step's trained tokens), balancing-bias updates, metrics, report,
// validation (with patience, best-validation tracking), checkpoints and exact resume.
// metrics.jsonl lines: "train" per logged step (weighted steps add trained_tokens and
// trained_tokens_per_s), "val" per evaluation, "stop" when patience ends the run, and the
// inputs' "data" line first.
std::string train_loop(const TrainConfig& cfg, const RunOptions& opts, TrainInputs& in);

// Text of the Debian documentation every system ships (/usr/share/common-licenses and
// /usr/share/doc/*/copyright; duplicates and non-UTF-8 files skipped): the default corpus.
std::vector<std::string> debian_docs_corpus();

}  // namespace seek::train
