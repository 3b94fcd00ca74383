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
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm_train.h"
#include "model/params.h"
#include "model/transformer.h"
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

double peak_gemm_gflops() {
  const int64_t n = 2048;
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  kernels::gemm_xwt(a.data(), b.data(), c.data(), n, n, n);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now_s();
    kernels::gemm_xwt(a.data(), b.data(), c.data(), n, n, n);
    best = std::max(best, 2.0 * double(n) * double(n) * double(n) / (now_s() - t0) / 1e9);
  }
  return best;
}

int run(const std::string& name, bool recompute, int steps) {
  const model::ModelConfig c = make_config(name);
  const int64_t B = 8, S = 256;
  model::Params p = model::Params::init(c, 0.02, 1);
  int64_t n_params = 0;
  for (const auto& i : p.infos()) n_params += i.numel;
  train::AdamW opt(p, {});
  std::vector<float> grad(p.size());
  std::mt19937 rng(1);
  model::ObjectiveOptions o;
  o.recompute = recompute;
  double t_total = 0;
  size_t tape = 0;
  for (int s = 0; s < steps + 1; ++s) {
    std::vector<int32_t> t;
    for (int64_t i = 0; i < B * (S + 1); ++i) t.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
    const model::TokenBatch b = model::TokenBatch::rows(B, S, std::move(t));
    const double t0 = now_s();
    std::fill(grad.begin(), grad.end(), 0.f);
    model::ModelWeights w = p.weights();
    model::ModelGrads g = p.grads(grad.data());
    model::StepResult r = model::forward_backward(c, w, g, b, o);
    opt.step(p, grad, 1e-3);
    if (s > 0) t_total += now_s() - t0;  // the first step warms up allocations
    tape = r.tape_bytes;
  }
  const double tps = double(B * S * steps) / t_total;
  const double achieved = tps * flops_per_token(c, S) / 1e9;
  const double peak = peak_gemm_gflops();
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%-5s %6.1fM params  recompute=%d  %7.0f tokens/s  %6.1f GFLOP/s  peak GEMM %6.1f GFLOP/s  MFU %5.1f%%  "
              "activations %6.1f MB  peak RSS %7.1f MB\n",
              name.c_str(), double(n_params) / 1e6, int(recompute), tps, achieved, peak, 100.0 * achieved / peak,
              double(tape) / 1e6, double(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name;
  bool recompute = false;
  int steps = 3;
  CLI::App app{"bench_train: training tokens/s and MFU (each configuration in its own process)"};
  app.add_option("CONFIG", name, "Run one configuration in this process")
      ->check(CLI::IsMember({"tiny", "small"}));
  app.add_flag("--recompute", recompute, "Recompute activations in the backward pass");
  app.add_option("--steps", steps, "Timed steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (!name.empty()) return run(name, recompute, steps);
  std::printf("batch 8 x 256 tokens, fp32, %d timed steps each\n", steps);
  for (const char* n : {"tiny", "small"})
    for (bool rc : {false, true}) {
      std::fflush(stdout);
      const pid_t pid = fork();  // fresh process: peak RSS per configuration
      if (pid == 0) {
        std::vector<std::string> args = {argv[0], n, "--steps", std::to_string(steps)};
        if (rc) args.push_back("--recompute");
        std::vector<char*> av;
        for (auto& a : args) av.push_back(a.data());
        av.push_back(nullptr);
        execv("/proc/self/exe", av.data());
        _exit(127);
      }
      int st = 0;
      waitpid(pid, &st, 0);
    }
  return 0;
}
