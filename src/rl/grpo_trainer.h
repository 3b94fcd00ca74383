// `seek grpo`: GRPO post-training of a Seek model on a verifiable task (DeepSeekMath §4.1, the RL
// of DeepSeek-R1). One step:
//
//   P prompts of the task (train split; a pure function of seed and step)
//     ─▶ chat template ─▶ P·G requests into ONE generate::Engine over the policy's float32
//        weights (Model::borrow: no copy), all submitted before it starts, decoded as one batch
//     ─▶ rewards (Σ weight · reward, rewards.h) ─▶ group advantages (grpo.h)
//     ─▶ μ optimizer updates over the P·G sequences: model::forward_backward with a
//        TokenObjective running grpo_token_term per completion token (prompt tokens weigh 0);
//        π_old = the first update's own log-probs, π_ref = a frozen copy of the init weights
//        (kept only when β > 0); clipping + AdamW as in pretraining
//     ─▶ Params::sync into the borrowed model for the next rollouts.
//
// Reproducibility: every random choice (prompts, per-request sampling seeds) is a hash of
// (seed, step, prompt, sample), so the run's only state is the weights, AdamW's moments and the
// step: a checkpoint holding those resumes exactly, and a seeded run repeats bit for bit (with
// precise rollouts; BF16 rollouts repeat too, as the engine's schedule is fixed by submitting
// every request while it is paused).
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "rl/grpo.h"
#include "rl/reward.h"
#include "train/optimizer.h"
#include "train/run_settings.h"

namespace seek::rl {

// A config file (JSON, // comments allowed; relative paths relative to the file):
//   {"init": MODEL_DIR, "task": "countdown" | TASKS.jsonl (rl/eval.h records),
//    "reward": ["countdown", "format"] | [{"name": "rm", "model": RM_DIR, "weight": 1.0}, ...]
//              (each entry a make_reward config plus an optional "weight", default 1; the first
//              entry's `correct` is the accuracy; default ["countdown"] for the countdown task),
//    "grpo": {"group_size": 16, "prompts_per_step": 4, "steps": 100, "mu": 1, "beta": 0.001,
//             "eps_low": 0.2, "eps_high": 0.2, "advantage": "std" | "no_std",
//             "loss_norm": "sequence" | "token" | "constant", "temperature": 1.0, "top_p": 1.0,
//             "max_tokens": 256},
//    "train": {"lr": 1e-5, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0,
//              "warmup": 0, "schedule": "constant" | "cosine" | "wsd", "seed": 1,
//              "save_every": 50, "keep_checkpoints": 2, "threads": 0, "log_every": 1,
//              "eval_every": 50 (0: never), "eval_n": 100},
//    "out": DIR}
struct GrpoConfig : train::RunSettings {  // "train": the fields every trainer shares
  std::string init, task, out;
  nlohmann::json reward = nlohmann::json::array();  // normalized: [{"name", "weight", ...}]
  int64_t group_size = 16, prompts_per_step = 4, steps = 100, mu = 1;
  GrpoLossOptions loss;  // beta, eps_low, eps_high, norm; max_len = max_tokens
  AdvantageOptions advantage;
  float temperature = 1.0f, top_p = 1.0f;
  int64_t max_tokens = 256;
  int64_t eval_n = 100;
  std::string source;  // the file it came from
  std::string text;    // its contents (saved with every checkpoint)

  // Checks everything up front; errors name the file and the field.
  static GrpoConfig parse(const std::string& text, const std::string& source);
  static GrpoConfig load(const std::string& path);
};

// The configured rewards, each scored separately (their means are logged) and summed with their
// weights into the reward GRPO trains on. `correct` is the first term's.
class RewardTerms : public Reward {
 public:
  RewardTerms(std::vector<std::string> names, std::vector<double> weights,
              std::vector<std::unique_ptr<Reward>> terms);
  static std::unique_ptr<RewardTerms> from_config(const nlohmann::json& normalized);
  std::string name() const override { return "grpo"; }
  RewardResult score(const RewardInput& in) const override;
  // Each term's result, in config order; the weighted sum is score()'s.
  std::vector<RewardResult> score_terms(const RewardInput& in) const;
  const std::vector<std::string>& names() const { return names_; }
  double weight(size_t i) const { return weights_[i]; }

 private:
  std::vector<std::string> names_;
  std::vector<double> weights_;
  std::vector<std::unique_ptr<Reward>> terms_;
};

struct GrpoRunOptions {
  bool resume = false;      // continue OUT/latest exactly
  int64_t stop_after = -1;  // stop (and checkpoint) after this many steps in total (testing)
  bool progress = true;     // log lines on stderr
  // F32 activations in the rollouts (EngineOptions::precise): tokens independent of batching.
  bool precise = false;
  // Tests: replaces the config's rewards (one term, weight 1, named by its name()).
  std::shared_ptr<const Reward> reward;
  int64_t micro_batch_tokens = 8192;  // input tokens per forward_backward call (≥ 1 sequence)
};

struct GrpoResult {
  std::string checkpoint;          // the last checkpoint written (OUT/final when finished)
  int64_t reference_params = 0;    // floats held by the frozen reference (0 when β = 0)
};
// Runs (or resumes) the training. OUT/metrics.jsonl gets one record per logged step:
//   {"type": "train", "step", "reward" (the weighted sum's mean), "reward/NAME" (each reward's
//    unweighted mean), "accuracy" (share the first reward marks correct), "response_length",
//    "loss", "kl", "clip_fraction", "ratio" (means over the completion tokens of all μ updates),
//    "entropy" (of the sampling policy), "grad_norm" (mean over the μ updates), "lr",
//    "rollout_tokens", and the timings "gen_seconds", "reward_seconds", "train_seconds",
//    "rollout_tokens_per_s", "train_tokens_per_s"}
// and one per evaluation (step 0 and every eval_every steps; greedy, F32):
//   {"type": "eval", "step", "accuracy", "ci_lo", "ci_hi" (95% Wilson), "n", "format_rate",
//    "response_length", "held_out", "eval_seconds"}.
// Checkpoints OUT/step-N and OUT/final are HF model directories (the init's dtype) with the
// AdamW moments and the step in training_state.bin; the rest of the run's state is (seed, step).
GrpoResult run_grpo(const GrpoConfig& cfg, const GrpoRunOptions& opts);

// ---- The objective (exposed for the gradient test) ----------------------------------------------

// Per target row of a packed model::TokenBatch (sequence after sequence, n_i rows each): whether
// the row's target is a completion token, its sequence's advantage and loss weight (loss_weight).
struct GrpoRows {
  std::vector<uint8_t> completion;
  std::vector<double> advantage, weight;
  int64_t rows() const { return int64_t(completion.size()); }
};
// Rows of sequences (prompt_len[i] prompt tokens of lengths[i] + 1) with per-sequence advantages,
// weighted by `opt.norm` over the whole set (opt.max_len for LossNorm::Constant).
GrpoRows grpo_rows(std::span<const int64_t> lengths, std::span<const int64_t> prompt_len,
                   std::span<const double> advantage, const GrpoLossOptions& opt);

// Sums over the completion rows an objective saw.
struct GrpoStats {
  double loss = 0.0, clipped = 0.0, kl = 0.0, ratio = 0.0, entropy = 0.0;
  int64_t tokens = 0;
};

// The TokenObjective of rows [row0, row0 + the batch's rows) of `rows`: grpo_token_term per
// completion row, 0 (and dlogp 0) for prompt rows. old_logp / ref_logp are indexed like rows;
// empty old_logp means π_old is this forward's own policy (ρ = 1: the first update); empty
// ref_logp means no KL term (β = 0). Each row's logp is stored into logp_out[row] when given,
// and the stats (entropy only with `entropy`) are added to *stats. Everything referenced must
// outlive the calls.
model::TokenObjective grpo_objective(const GrpoRows& rows, int64_t row0,
                                     std::span<const double> old_logp,
                                     std::span<const double> ref_logp,
                                     const GrpoLossOptions& opt, std::vector<double>* logp_out,
                                     GrpoStats* stats, bool entropy);

}  // namespace seek::rl
