// A learned reward for prompts without a checker (R1 §2.3.4; InstructGPT's reward model): a
// Seek model with a scalar head, trained on preference pairs with the Bradley–Terry loss
//
//   r(x) = w · xn_last(x)                  xn_last: final-normed hidden state at x's last token
//   L    = mean over pairs of −log σ(r(prompt + chosen) − r(prompt + rejected))
//
// Each side is the conversation [prompt messages…, {assistant: answer}] rendered with the
// model's chat template (so it ends with the template's end-of-turn token, where the score is
// read) and encoded as `seek eval` encodes prompts. The head has no bias: the loss only sees
// score differences, so a bias would get a zero gradient and never move. A checkpoint is the
// model (HF tensors, as `seek train` saves it) plus `score.weight` [1, H] in the same
// model.safetensors, always F32 — the tensor name and layout of transformers'
// AutoModelForSequenceClassification (which also reads the score at the last token).
//
// `seek rm` (reward_model_train.cpp) trains one; RewardModelReward plugs it into the reward
// interface ({"name": "rm", "model": DIR} in make_reward) for `seek grpo`.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "rl/reward.h"
#include "tokenizer/fwd.h"
#include "train/optimizer.h"
#include "train/run_settings.h"
#include "train/trainer.h"

namespace seek::rl {

// ---- preference pairs ----

// One JSONL record {"prompt": str | [{role, content}, …], "chosen": str, "rejected": str}
// (other fields are ignored). A messages prompt ends with the user's turn.
struct PreferencePair {
  nlohmann::json messages;  // the conversation the answers reply to
  std::string chosen, rejected;
  std::string where;        // FILE:LINE, for errors about this pair later on
};
// Throws seek::Error naming `where` and the field.
PreferencePair pair_from_json(const nlohmann::json& j, const std::string& where);
// Every non-blank line of a JSONL file; errors name PATH:LINE. With `skipped`, a bad record is
// skipped and counted there instead.
std::vector<PreferencePair> load_pairs(const std::string& path, int64_t* skipped = nullptr);

// The ids a score is read from: `messages` + the assistant's `answer`, rendered by the chat
// template without a generation prompt, encoded without added special tokens (the template
// writes BOS), as rl/eval.h's render_prompt encodes prompts.
std::vector<int32_t> render_answer(const tokenizer::ChatTemplate& tmpl,
                                   const tokenizer::Tokenizer& tok,
                                   const nlohmann::json& messages, std::string_view answer);

// ---- the head and its loss ----

// r_i = w · xn[last[i]] for xn [T, H] (double accumulation).
std::vector<double> head_scores(const float* xn, int64_t H, std::span<const int64_t> last,
                                const float* w);

// Bradley–Terry over pairs: sequences 2k (chosen) and 2k+1 (rejected) of `last`. Returns
// scale · Σ_k −log σ(r_2k − r_2k+1) (scale = 1/pairs of the optimizer step gives the mean).
// With dxn ([T, H], zeroed by the caller): writes ∂/∂xn at the last rows and adds ∂/∂w to dw.
// `scores` (if given) receives every r_i.
double bradley_terry(const float* xn, int64_t H, std::span<const int64_t> last, const float* w,
                     double scale, float* dxn, float* dw, std::vector<double>* scores = nullptr);

// Scores token sequences with a model + head, in forward passes (no backward) of about
// `max_batch_tokens` tokens each. Every sequence must fit the model's context.
std::vector<double> score_sequences(const model::ModelConfig& cfg, const model::ModelWeights& w,
                                    std::span<const float> head,
                                    std::span<const std::vector<int32_t>> seqs,
                                    int64_t max_batch_tokens = 4096);

// ---- a trained reward model, loaded ----

class RewardModel {
 public:
  // DIR: a `seek rm` checkpoint (config.json, model.safetensors with score.weight, tokenizer
  // files). Weights are read as float32 (BF16/FP8 widened), so scores match training's.
  static std::shared_ptr<const RewardModel> load(const std::string& dir);

  const model::ModelConfig& config() const { return params_.config(); }
  const std::vector<float>& head() const { return head_; }
  // The rendered ids of (messages, answer); keeps the last max_position_embeddings ids of a
  // longer one (the score token is last) and sets *truncated.
  std::vector<int32_t> render(const nlohmann::json& messages, std::string_view answer,
                              bool* truncated = nullptr) const;
  // r of each sequence (one batched forward per ~4096 tokens). Thread-safe.
  std::vector<double> score(std::span<const std::vector<int32_t>> seqs) const;

 private:
  RewardModel(model::Params p, std::vector<float> head);
  model::Params params_;
  model::ModelWeights weights_;
  std::vector<float> head_;
  std::shared_ptr<const tokenizer::Tokenizer> tok_;
  std::shared_ptr<const tokenizer::ChatTemplate> tmpl_;
};

// The "rm" reward: weight · r(prompt, completion). The conversation is the task record's
// "messages" when it has them, else the user prompt alone. `correct` is always false (a learned
// score verifies nothing); the reason says the raw score. score_batch runs a group in one pass.
class RewardModelReward : public Reward {
 public:
  RewardModelReward(std::shared_ptr<const RewardModel> model, double weight = 1.0);
  std::string name() const override { return "rm"; }
  RewardResult score(const RewardInput& in) const override;
  std::vector<RewardResult> score_batch(std::span<const RewardInput> in) const override;

 private:
  std::shared_ptr<const RewardModel> model_;
  double weight_;
};

// ---- training (`seek rm`, reward_model_train.cpp) ----

// {"init": MODEL_DIR, "data": {"pairs": FILE.jsonl, "val": FILE.jsonl, "skip_bad": false},
//  "train": {"batch_size" (pairs per micro-batch), "grad_accum", "steps" | "epochs", "max_len"
//            (tokens per side; default the model's max_position_embeddings), "lr", "min_lr",
//            "warmup", "schedule", "wsd_decay", "weight_decay", "beta1", "beta2", "grad_clip",
//            "bias_update_speed", "balance_alpha", "recompute", "init_std" (the head's),
//            "seed", "log_every", "eval_every", "save_every", "keep_checkpoints", "threads",
//            "save_dtype"},
//  "out": DIR}
// Without "val", every 10th pair of "pairs" is held out. Relative paths are relative to the
// config file; unknown keys are errors naming the file and field.
struct RmConfig : train::ModelRunSettings {  // the "train" fields shared with `seek train`
  std::string init, pairs, val, out, source;
  bool skip_bad = false;  // over-long or malformed pairs: skipped and counted instead of an error
  int64_t steps = 0, max_len = 0;
  double epochs = 0.0;  // steps = ceil(epochs · train pairs / (batch_size · grad_accum))

  static RmConfig parse(const std::string& text, const std::string& source);
  static RmConfig load(const std::string& path);
};

// Trains (or resumes, exactly) and returns the final checkpoint directory. Writes
// OUT/metrics.jsonl ("train" records: loss, accuracy, margin, lr, grad_norm; "val" records:
// val_loss and accuracy on the held-out pairs), OUT/report.html, OUT/step-N and OUT/final.
std::string run_reward_model_training(const RmConfig& cfg, const train::RunOptions& opts);

}  // namespace seek::rl
