// GRPO rollout throughput (issue 14, Performance): tokens/s of a group of G completions of one
// prompt decoded together by the engine, against single-stream decode of the same model, both
// over float32 weights borrowed from model::Params as `seek grpo` decodes its policy.
// A random model rarely samples EOS, so completions run to --gen tokens.
//   bench_rollout [--model DIR] [--group 16] [--prompt 64] [--gen 64] [--threads 2] [--precise]
// Without --model a small random DeepSeek-V2-shaped model (MLA + MoE) is made in memory.
// Prints both rates and their ratio (target: ≥ 4× at G = 16).
#include <CLI/CLI.hpp>
#include <omp.h>

#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "generate/engine.h"
#include "rl/grpo_trainer_rollout.h"
#include "model/params.h"
#include "model/transformer.h"
#include "roofline.h"

using namespace seek;

namespace {

// The small model: hidden 1024, 2 layers (dense, then MoE with 16 experts, top-4, 2 shared).
model::ModelConfig small_config() {
  return model::ModelConfig::from_json(nlohmann::json::parse(R"({
      "model_type": "deepseek_v2", "vocab_size": 16384, "hidden_size": 1024,
      "intermediate_size": 2816, "moe_intermediate_size": 512, "num_hidden_layers": 2,
      "num_attention_heads": 8, "q_lora_rank": null, "kv_lora_rank": 256,
      "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "v_head_dim": 64,
      "n_routed_experts": 16, "n_shared_experts": 2, "num_experts_per_tok": 4,
      "first_k_dense_replace": 1, "scoring_func": "softmax", "topk_method": "greedy",
      "max_position_embeddings": 4096, "bos_token_id": 0, "eos_token_id": 1,
      "torch_dtype": "float32"})"),
      "bench_rollout small model");
}

// G completions of one prompt through rl::rollout, the path `seek grpo` takes (the first
// completion prefills, the other G − 1 copy its KV rows and join it); generated tokens per
// second over the whole rollout, prefill included.
double rollout_rate(const model::Model& m, const std::vector<int32_t>& prompt, int group, int gen,
                    bool precise) {
  const rl::ChatPrompt p{prompt, false};
  rl::RolloutOptions ro;
  ro.sampling.temperature = 1.0f;
  ro.sampling.seed = 1;
  ro.group = group;
  ro.max_tokens = gen;
  ro.precise = precise;
  const double t0 = bench::now_s();
  const std::vector<rl::Completion> out = rl::rollout(m, nullptr, std::span(&p, 1), ro);
  const double dt = bench::now_s() - t0;
  int64_t tokens = 0;
  for (const rl::Completion& c : out) tokens += int64_t(c.tokens.size());
  return double(tokens) / dt;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string dir;
  int group = 16, prompt_len = 64, gen = 64, threads = 2;
  bool precise = false;
  CLI::App app{"bench_rollout: GRPO rollout tokens/s at group size G vs single-stream decode"};
  app.add_option("--model", dir, "Model directory (default: a small random model in memory)");
  app.add_option("--group", group, "Completions decoded together (G)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--prompt", prompt_len, "Prompt tokens")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--gen", gen, "Tokens generated per completion")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--precise", precise, "F32 activations (default: BF16, as `seek grpo` without --precise)");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);

  const model::ModelConfig cfg = dir.empty() ? small_config() : model::ModelConfig::load(dir);
  // float32 master weights, as the GRPO trainer holds them; the engine decodes them in place.
  const model::Params p = dir.empty() ? model::Params::init(cfg, 0.02, 1) : model::Params::load(cfg, dir);
  const std::unique_ptr<model::Model> m = model::Model::borrow(cfg, p.weights());

  std::mt19937 rng(5);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
  for (int32_t& t : prompt) t = int32_t(2 + rng() % uint32_t(cfg.vocab_size - 2));
  std::printf("bench_rollout: %s, %lld layers, hidden %lld, vocab %lld, %.1fM float32 parameters; "
              "prompt %d, %d tokens per completion, %d threads%s\n",
              cfg.model_type.c_str(), (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
              (long long)cfg.vocab_size, double(p.size()) / 1e6, prompt_len, gen, threads,
              precise ? ", F32 activations" : "");
  rollout_rate(*m, prompt, 1, 4, precise);  // warm-up: pages, threads
  const double single = rollout_rate(*m, prompt, 1, gen, precise);
  const double grouped = rollout_rate(*m, prompt, group, gen, precise);
  std::printf("single stream: %10.1f tokens/s\n", single);
  std::printf("G = %-3d rollout: %8.1f tokens/s\n", group, grouped);
  std::printf("ratio: %.2fx (target >= 4x)\n", grouped / single);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_rollout: error: %s\n", e.what());
  return 1;
}
