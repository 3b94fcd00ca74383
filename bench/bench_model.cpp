// End-to-end inference benchmark (issue: run DeepSeek checkpoints fast on CPU).
//   bench_model MODEL_DIR [--threads N] [--prompt 512] [--gen 64] [--mmap] [--precise]
// Prints prefill tokens/s (and its share of the measured bf16 dot peak), decode tokens/s (and its
// share of the memory-bandwidth roofline = bandwidth ÷ weight bytes read per token), and peak RSS
// against weights + KV cache.
#include <omp.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "model/transformer.h"
#include "roofline.h"

using namespace seek;

static double peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) * 1024.0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model MODEL_DIR [--threads N] [--prompt N] [--gen N] [--mmap] [--precise]\n");
    return 2;
  }
  std::string dir = argv[1];
  int threads = 2, prompt = 512, gen = 64;
  bool mmap_mode = false, precise = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--gen" && i + 1 < argc) gen = std::atoi(argv[++i]);
    else if (a == "--mmap") mmap_mode = true;
    else if (a == "--precise") precise = true;
  }
  omp_set_num_threads(threads);
  try {
    double bw = bench::read_bandwidth_gbs(threads, size_t(512) << 20);
    double peak = bench::bf16_peak_gflops(threads);

    double t0 = bench::now_s();
    model::LoadOptions lo;
    lo.mode = mmap_mode ? LoadMode::Mmap : LoadMode::Read;
    auto m = model::Model::load(dir, lo);
    double load_s = bench::now_s() - t0;
    const auto& cfg = m->config();
    model::KVCache cache(cfg, 1, prompt + gen + 1);
    model::ModelStats st = model::model_stats(*m, &cache);

    std::mt19937 rng(1);
    std::vector<int32_t> ids(static_cast<size_t>(prompt));
    for (auto& id : ids) id = int32_t(rng() % uint32_t(cfg.vocab_size));
    std::vector<float> logits;
    model::ForwardOptions po;
    po.precision = precise ? kernels::Precision::F32 : kernels::Precision::BF16;
    t0 = bench::now_s();
    model::forward(*m, cache, model::Batch{ids, {{0, 0, prompt, false}}}, logits, po);
    double prefill_s = bench::now_s() - t0;
    // Matrix-product FLOPs of the prefill: 2 per active weight per token (the attention core is
    // counted separately: scores and values over the causal triangle, per head).
    double attn_flops = double(cfg.num_hidden_layers) * cfg.num_attention_heads * prompt *
                        (prompt + 1) / 2.0 * 2.0 * double(cfg.qk_head_dim() + cfg.v_head_dim);
    double flops = 2.0 * double(st.params_active - cfg.vocab_size * cfg.hidden_size) * prompt +
                   attn_flops;

    int32_t next = 0;
    t0 = bench::now_s();
    for (int i = 0; i < gen; ++i) {
      model::forward(*m, cache, model::Batch{{next}, {{0, prompt + i, 1, false}}}, logits);
      next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    double decode_s = bench::now_s() - t0;
    double decode_tps = gen / decode_s;
    double roofline_tps = bw * 1e9 / double(st.weight_bytes_per_token);
    double weights = double(st.weight_bytes_total);
    double kv = double(st.kv_bytes_per_token) * double(prompt + gen + 1);

    std::printf("model            %s (%s, %lld layers)\n", dir.c_str(), cfg.model_type.c_str(),
                (long long)cfg.num_hidden_layers);
    std::printf("threads          %d   load %s: %.2f s\n", threads, mmap_mode ? "mmap" : "read", load_s);
    std::printf("machine          read bandwidth %.1f GB/s, bf16 dot peak %.0f GFLOP/s\n", bw, peak);
    std::printf("prefill          %d tokens in %.3f s = %.1f tok/s, %.0f GFLOP/s = %.1f%% of bf16 peak (%s)\n",
                prompt, prefill_s, prompt / prefill_s, flops / prefill_s / 1e9,
                100.0 * flops / prefill_s / 1e9 / peak, precise ? "f32 activations" : "bf16 activations");
    std::printf("decode           %d tokens: %.2f tok/s; %.1f MB weights/token; roofline %.2f tok/s; %.1f%% of roofline\n",
                gen, decode_tps, st.weight_bytes_per_token / 1e6, roofline_tps,
                100.0 * decode_tps / roofline_tps);
    std::printf("peak RSS         %.2f GB (weights %.2f GB + KV %.3f GB = %.2f GB; ratio %.3f)\n",
                peak_rss_bytes() / 1e9, weights / 1e9, kv / 1e9, (weights + kv) / 1e9,
                peak_rss_bytes() / (weights + kv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
