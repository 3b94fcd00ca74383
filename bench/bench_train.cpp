// Training throughput (tokens/s), model FLOPs utilization and peak memory for two configs:
//   tiny  ~5M params (dense + MoE layers, MTP)
//   small ~50M params (8 routed experts + 1 shared, top-2, MTP D=1)
// MFU = achieved model FLOP/s ÷ the peak GEMM FLOP/s measured here (the training GEMM on a
// large square product, all threads). Model FLOPs per token = 6 · (matmul parameters a token
// uses: attention projections, dense FFN or shared + top-k experts, router, heads, MTP) +
// attention scores/values (6 · 2 · nh · S · (d_h + d_R + d_v) per token and layer, the full
// square as computed). Peak memory is each configuration's peak RSS, measured in a fresh
// process, with and without activation recomputation.
//   bench_train [tiny|small] [--recompute] [--steps N]     (no arguments: all four runs)
//   bench_train [tiny|small] --precision bf16|fp8   the linear layers' GEMMs on bf16 operands
//                                              or V3's FP8 GEMMs (issue 15); MFU then against
//                                              the bf16 GEMM peak (there is no FP8 hardware)
//   bench_train --precisions                   fp32, bf16 and fp8 of both configs
// Post-training on the same model and token budget (issue 14: within 20% of pretraining):
//   bench_train tiny|small --objective sft    packed samples of 64..448 tokens, loss on the
//                                              last 60% of each (the assistant's tokens)
//   bench_train tiny|small --objective grpo   the same samples as prompt + completion: the
//                                              reference policy's forward (β > 0), then the
//                                              policy's forward + backward with the GRPO token
//                                              objective (μ = 1), as `seek grpo` trains
//   bench_train --post-training               pretrain, sft and grpo of both configs
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/memory.h"
#include "kernels/gemm_train.h"
#include "model/params.h"
#include "model/transformer.h"
#include "rl/grpo_trainer.h"
#include "train/optimizer.h"

using namespace seek;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

model::ModelConfig make_config(const std::string& name) {
  model::ModelConfig c;
  c.model_type = "deepseek_v3";
  c.scoring_func = model::ScoringFunc::Sigmoid;
  c.topk_method = model::TopkMethod::NoauxTc;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.num_nextn_predict_layers = 1;
  c.max_position_embeddings = 4096;
  c.eos_token_ids = {1};
  c.n_routed_experts = 8;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 2;
  c.n_group = 2;
  c.topk_group = 2;
  c.first_k_dense_replace = 1;
  if (name == "tiny") {
    c.vocab_size = 4096;
    c.hidden_size = 192;
    c.intermediate_size = 512;
    c.moe_intermediate_size = 128;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.q_lora_rank = 96;
    c.kv_lora_rank = 64;
    c.qk_nope_head_dim = 32;
    c.qk_rope_head_dim = 16;
    c.v_head_dim = 32;
  } else {
    c.vocab_size = 8192;
    c.hidden_size = 512;
    c.intermediate_size = 1536;
    c.moe_intermediate_size = 512;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 8;
    c.q_lora_rank = 256;
    c.kv_lora_rank = 128;
    c.qk_nope_head_dim = 64;
    c.qk_rope_head_dim = 32;
    c.v_head_dim = 64;
  }
  return c;
}

double flops_per_token(const model::ModelConfig& c, int64_t S) {
  const double H = double(c.hidden_size), nh = double(c.num_attention_heads);
  const double qd = double(c.qk_head_dim()), dv = double(c.v_head_dim), dc = double(c.kv_lora_rank);
  auto block = [&](bool moe) {
    double attn = (c.q_lora_rank > 0 ? H * double(c.q_lora_rank) + double(c.q_lora_rank) * nh * qd : H * nh * qd) +
                  H * (dc + double(c.qk_rope_head_dim)) + dc * nh * (double(c.qk_nope_head_dim) + dv) + nh * dv * H;
    double ffn = moe ? 3 * H * double(c.moe_intermediate_size) * double(c.num_experts_per_tok + c.n_shared_experts) +
                           H * double(c.n_routed_experts)
                     : 3 * H * double(c.intermediate_size);
    const double params = attn + ffn;
    const double scores = 2.0 * nh * double(S) * (qd + dv);  // forward FLOPs per token
    return 6.0 * params + 3.0 * scores;
  };
  double f = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) f += block(c.is_moe_layer(l));
  f += 6.0 * H * double(c.vocab_size);  // head
  for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k)
    f += block(c.is_moe_layer(c.num_hidden_layers + k)) + 6.0 * (2 * H * H + H * double(c.vocab_size));
  return f;
}

double peak_gemm_gflops(kernels::Precision prec) {
  const int64_t n = 2048;
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  kernels::gemm_xwt(a.data(), b.data(), c.data(), n, n, n, false, prec);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now_s();
    kernels::gemm_xwt(a.data(), b.data(), c.data(), n, n, n, false, prec);
    best = std::max(best, 2.0 * double(n) * double(n) * double(n) / (now_s() - t0) / 1e9);
  }
  return best;
}

// One step's tokens: B·S targets as rows of S (pretraining) or as packed samples of 64..448
// targets (SFT, GRPO), each with its prompt length (the first 40%).
struct StepBatch {
  model::TokenBatch tb;
  std::vector<int64_t> prompt_len;
};

StepBatch make_batch(const std::string& objective, const model::ModelConfig& c, int64_t B,
                     int64_t S, std::mt19937& rng) {
  auto tok = [&] { return int32_t(rng() % uint32_t(c.vocab_size)); };
  StepBatch sb;
  if (objective == "pretrain") {
    std::vector<int32_t> t;
    for (int64_t i = 0; i < B * (S + 1); ++i) t.push_back(tok());
    sb.tb = model::TokenBatch::rows(B, S, std::move(t));
    return sb;
  }
  for (int64_t left = B * S; left > 0;) {
    const int64_t n = std::min<int64_t>(left, 64 + int64_t(rng() % 385));
    const int64_t prompt = std::max<int64_t>(1, n * 2 / 5);
    for (int64_t i = 0; i <= n; ++i) sb.tb.tokens.push_back(tok());
    sb.tb.lengths.push_back(n);
    sb.prompt_len.push_back(prompt);
    if (objective == "sft")
      for (int64_t i = 0; i < n; ++i) sb.tb.weights.push_back(i + 1 >= prompt ? 1.0f : 0.0f);
    left -= n;
  }
  return sb;
}

int run(const std::string& name, bool recompute, int steps, const std::string& objective,
        const std::string& precision) {
  const kernels::Precision prec =
      precision == "bf16"  ? kernels::Precision::BF16
      : precision == "fp8" ? kernels::Precision::FP8
                           : kernels::Precision::F32;
  const model::ModelConfig c = make_config(name);
  const int64_t B = 8, S = 256;
  model::Params p = model::Params::init(c, 0.02, 1);
  // GRPO's frozen reference policy (only then: peak RSS counts it).
  std::optional<model::Params> ref;
  if (objective == "grpo") ref = model::Params::init(c, 0.02, 1);
  int64_t n_params = 0;
  for (const auto& i : p.infos()) n_params += i.numel;
  train::AdamW opt(p, {});
  std::vector<float> grad(p.size());
  std::mt19937 rng(1);
  model::ObjectiveOptions o;
  o.recompute = recompute;
  o.precision = prec;
  rl::GrpoLossOptions gl;  // R1-Zero: β = 0.001, ε = 0.2, per-sequence normalization
  double t_total = 0;
  size_t tape = 0;
  for (int s = 0; s < steps + 1; ++s) {
    const StepBatch sb = make_batch(objective, c, B, S, rng);
    const double t0 = now_s();
    std::fill(grad.begin(), grad.end(), 0.f);
    model::ModelWeights w = p.weights();
    model::ModelGrads g = p.grads(grad.data());
    model::ObjectiveOptions os = o;
    std::vector<double> ref_logp, adv;
    rl::GrpoRows rows;
    if (objective == "grpo") {
      for (size_t i = 0; i < sb.prompt_len.size(); ++i) adv.push_back(double(int(rng() % 3) - 1));
      rows = rl::grpo_rows(sb.tb.lengths, sb.prompt_len, adv, gl);
      ref_logp.resize(size_t(rows.rows()));
      model::ObjectiveOptions ro;
      ro.backward = false;
      ro.precision = prec;
      ro.token_objective = [&ref_logp](int64_t row, double logp, std::span<const float>,
                                       double& dlogp) {
        ref_logp[size_t(row)] = logp;
        dlogp = 0.0;
        return 0.0;
      };
      model::ModelGrads none;
      model::forward_backward(c, ref->weights(), none, sb.tb, ro);
      os.token_objective = rl::grpo_objective(rows, 0, {}, ref_logp, gl, nullptr, nullptr, false);
    }
    model::StepResult r = model::forward_backward(c, w, g, sb.tb, os);
    opt.step(p, grad, 1e-3);
    if (s > 0) t_total += now_s() - t0;  // the first step warms up allocations
    tape = std::max(tape, r.tape_bytes);
  }
  const double tps = double(B * S * steps) / t_total;
  const double achieved = tps * flops_per_token(c, S) / 1e9;
  const double peak = peak_gemm_gflops(prec == kernels::Precision::FP8 ? kernels::Precision::BF16 : prec);
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%-5s %-8s %-4s %6.1fM params  recompute=%d  %7.0f tokens/s  %6.1f GFLOP/s  peak GEMM %6.1f GFLOP/s  MFU %5.1f%%  "
              "activations %6.1f MB  peak RSS %7.1f MB\n",
              name.c_str(), objective.c_str(), precision.c_str(), double(n_params) / 1e6, int(recompute), tps, achieved, peak,
              100.0 * achieved / peak, double(tape) / 1e6, double(ru.ru_maxrss) / 1024.0);
  return 0;
}

// Runs this program again in a fresh process (peak RSS per configuration).
void run_child(const char* self, std::vector<std::string> args) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    args.insert(args.begin(), self);
    std::vector<char*> av;
    for (auto& a : args) av.push_back(a.data());
    av.push_back(nullptr);
    execv("/proc/self/exe", av.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
}

}  // namespace

int main(int argc, char** argv) {
  seek::retain_freed_memory();  // as a training run does
  std::string name, objective = "pretrain", precision = "fp32";
  bool recompute = false, post = false, precisions = false;
  int steps = 3;
  CLI::App app{"bench_train: training tokens/s and MFU (each configuration in its own process)"};
  app.add_option("CONFIG", name, "Run one configuration in this process")
      ->check(CLI::IsMember({"tiny", "small"}));
  app.add_flag("--recompute", recompute, "Recompute activations in the backward pass");
  app.add_option("--objective", objective, "pretrain, sft or grpo")
      ->capture_default_str()
      ->check(CLI::IsMember({"pretrain", "sft", "grpo"}));
  app.add_flag("--post-training", post, "pretrain, sft and grpo tokens/s of both configurations");
  app.add_option("--precision", precision, "fp32, bf16 or fp8 (the linear layers' GEMMs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp8"}));
  app.add_flag("--precisions", precisions, "fp32, bf16 and fp8 of both configurations");
  app.add_option("--steps", steps, "Timed steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (!name.empty()) return run(name, recompute, steps, objective, precision);
  std::printf("batch 8 x 256 tokens, %s, %d timed steps each\n",
              precisions ? "fp32, bf16 and fp8" : precision.c_str(), steps);
  for (const char* n : {"tiny", "small"}) {
    if (precisions) {
      for (const char* pr : {"fp32", "bf16", "fp8"})
        run_child(argv[0], {n, "--steps", std::to_string(steps), "--precision", pr});
      continue;
    }
    if (post) {
      for (const char* obj : {"pretrain", "sft", "grpo"})
        run_child(argv[0], {n, "--steps", std::to_string(steps), "--objective", obj,
                            "--precision", precision});
      continue;
    }
    for (bool rc : {false, true}) {
      std::vector<std::string> args = {n, "--steps", std::to_string(steps), "--precision", precision};
      if (rc) args.push_back("--recompute");
      run_child(argv[0], args);
    }
  }
  return 0;
}
