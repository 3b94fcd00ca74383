// GRPO (DeepSeekMath §4.1; the RL of DeepSeek-R1): group-relative advantages, the PPO-clipped
// token objective with a k3 KL penalty to a frozen reference, and the step from the gradient
// with respect to a token's log-prob to the gradient with respect to its logits row.
//
// For each prompt q a group of G completions o_1..o_G is sampled from π_old and scored
// r_1..r_G. The objective (maximized; the loss here is its negative):
//
//   J = (1/G) Σ_i (1/|o_i|) Σ_t [ min(ρ_{i,t} Â_i, clip(ρ_{i,t}, 1−ε_low, 1+ε_high) Â_i) − β KL_{i,t} ]
//   ρ = π_θ(o_{i,t} | q, o_{i,<t}) / π_old(…) = exp(logp − old_logp)
//   KL_{i,t} = π_ref/π_θ − log(π_ref/π_θ) − 1 = e^d − d − 1, d = ref_logp − logp   (k3, ≥ 0)
//   Â_i = (r_i − mean(r)) / (std(r) + eps)
//
// This file is math on flat per-token arrays, free of the model: the trainer computes the
// log-probs with the model's forward, calls grpo_loss for dloss/dlogp, and turns each dlogp into
// a logits-row gradient with token_logprob (which reuses model::cross_entropy).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace seek::rl {

// ---- Advantages --------------------------------------------------------------------------------

struct AdvantageOptions {
  // GRPO divides by the group's std; Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like
  // Training") drops the division, which otherwise up-weights prompts whose rewards barely vary
  // (too easy or too hard): Â_i = r_i − mean(r).
  bool scale_by_std = true;
  double eps = 1e-4;  // added to the std (TRL's GRPOTrainer value)
};

// Advantages of rewards laid out group after group ([n_groups · G], the G completions of one
// prompt consecutive). The std is the sample std (divisor G − 1), as TRL's GRPOTrainer computes
// it (torch.std is Bessel-corrected) so its runs and ours agree; DeepSeekMath does not say which.
// A group whose rewards are all equal carries no signal and gets exactly 0 (also G = 1, where
// the sample std is undefined). Throws seek::Error if G < 1 or the size is not a multiple of G.
std::vector<double> group_advantages(std::span<const double> rewards, int64_t G,
                                     const AdvantageOptions& opt = {});

// ---- The clipped objective ---------------------------------------------------------------------

// How the per-token terms are averaged into the loss (n = sequences in the batch):
//   Sequence: (1/n) Σ_i (1/|o_i|) Σ_t    GRPO as published (a sequence's tokens share weight 1)
//   Token:    (1/Σ_i |o_i|) Σ_i Σ_t      DAPO: every token weighs the same
//   Constant: (1/n) Σ_i (1/L) Σ_t        Dr. GRPO: L = max_len, the generation budget, so long
//                                        wrong answers are not penalized less per token
enum class LossNorm { Sequence, Token, Constant };

struct GrpoLossOptions {
  double eps_low = 0.2, eps_high = 0.2;  // the clip range [1 − ε_low, 1 + ε_high] (DAPO: 0.2/0.28)
  double beta = 0.001;                   // KL weight (R1-Zero); 0 needs no reference log-probs
  LossNorm norm = LossNorm::Sequence;
  int64_t max_len = 0;  // L for LossNorm::Constant (> 0 there)
  // When a batch is split into micro-batches, the normalizers are the whole batch's: its number
  // of sequences and of completion tokens. 0 means "this call's".
  int64_t batch_sequences = 0, batch_tokens = 0;
};

// One batch of sampled completions, tokens flattened sequence after sequence (the layout of
// model::Batch). Per-token arrays are [T], T = Σ seq_len.
struct PolicyTokens {
  std::span<const double> logp;       // log π_θ of the sampled token, current policy     [T]
  std::span<const double> old_logp;   // log π_old, stored when sampled                   [T]
  std::span<const double> ref_logp;   // log π_ref of the frozen reference; empty if β = 0 [T]
  std::span<const uint8_t> mask;      // 1 for completion tokens, 0 for prompt or padding  [T]
  std::span<const int64_t> seq_len;   // tokens of each sequence                           [n]
  std::span<const double> advantage;  // Â of each sequence                                [n]
};

struct GrpoLoss {
  double loss = 0.0;          // −J
  std::vector<double> dlogp;  // ∂loss/∂logp per token [T] (0 where mask = 0)
  // Means over the completion tokens, for the metrics:
  int64_t tokens = 0;          // completion tokens (Σ mask)
  double clip_fraction = 0.0;  // share where the clip is active (the gradient is 0 because of it)
  double kl_mean = 0.0;        // mean KL_t (0 when no reference log-probs are given)
  double ratio_mean = 0.0;     // mean ρ
  double adv_abs_mean = 0.0;   // mean |Â| of the token's sequence
};

// One completion token's term of the loss, for callers that see the tokens one at a time (the
// trainer's TokenObjective, called per target row by the model's forward): w is the token's
// weight in the sum (loss_weight), ref_logp is ignored unless has_ref. grpo_loss is the sum of
// these over a batch.
struct TokenTerm {
  double loss = 0.0;   // −w·(surrogate − β·KL)
  double dlogp = 0.0;  // ∂loss/∂logp
  bool clipped = false;
  double kl = 0.0, ratio = 1.0;
};
TokenTerm grpo_token_term(double logp, double old_logp, double ref_logp, bool has_ref,
                          double advantage, double w, const GrpoLossOptions& opt);

// The weight of each token term of a sequence with `len` completion tokens (len > 0) in a batch
// of n_seq sequences and n_tok completion tokens (the normalizers of LossNorm above).
double loss_weight(const GrpoLossOptions& opt, int64_t len, double n_seq, double n_tok);

// The loss and its gradient. The surrogate's gradient is ρÂ·∂logp where min() picks the
// unclipped term and 0 where it picks the clipped one (Â > 0 and ρ > 1+ε_high, or Â < 0 and
// ρ < 1−ε_low); the KL term's is β(1 − e^d). A sequence without completion tokens adds nothing
// (but still counts in n). Throws seek::Error naming the field on inconsistent sizes, on a
// non-finite log-prob of a completion token or advantage, on β > 0 without ref_logp, or on
// LossNorm::Constant without max_len. Prompt/padding tokens (mask 0) are never read.
GrpoLoss grpo_loss(const PolicyTokens& in, const GrpoLossOptions& opt);

// ---- From log-probs to logits -------------------------------------------------------------------

// logp = log_softmax(row)[y] of one logits row [V]. With backward, overwrites the row with
// ∂(dlogp_coef · logp)/∂row = dlogp_coef · (onehot(y) − softmax(row)), the gradient to send into
// the output head. This is cross-entropy's gradient with coefficient −dlogp_coef (CE = −logp),
// so it is model::cross_entropy.
//
// The row is taken as the policy's logits at temperature 1: R1-Zero samples at temperature 1, so
// the stored old_logp and these log-probs are of the same distribution and ρ is a true ratio. A
// trainer sampling at τ ≠ 1 would divide the row by τ first (as TRL does) and the gradient by τ
// after.
double token_logprob(float* row, int64_t V, int32_t y, bool backward, float dlogp_coef);

// Entropy −Σ p log p of softmax(row) (nats), in double; for the entropy metric.
double entropy(const float* row, int64_t V);

}  // namespace seek::rl
