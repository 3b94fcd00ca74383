// End-to-end inference benchmark (issue: run DeepSeek checkpoints fast on CPU).
//   bench_model MODEL_DIR [--threads N] [--prompt 512] [--gen 32] [--reps 3] [--mmap] [--precise]
//               [--chunk N]   (prefill in chunks of N tokens, as the engine's chunked prefill; long
//                              contexts: --prompt 16384 --chunk 512 decodes at depth 16k)
//               [--near N]    (depth of the companion decode, default 64)
// Prints prefill tokens/s (and its share of the measured bf16 dot peak), decode tokens/s (and its
// share of the memory-bandwidth roofline = bandwidth ÷ weight bytes read per token), decode at
// the `--near` depth measured in the same pairs (and the ratio of the two: what depth costs),
// and peak RSS against weights + KV cache.
#include <CLI/CLI.hpp>
#include <omp.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>
#include <random>
#include <string>
#include <tuple>

#include "model/transformer.h"
#include "roofline.h"

using namespace seek;

static double peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) * 1024.0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  std::string dir;
  int threads = 2, prompt = 512, gen = 32, reps = 3, chunk = 0, near = 64;
  bool mmap_mode = false, precise = false;
  CLI::App app{"bench_model: prefill and decode speed of a checkpoint against the roofline"};
  app.add_option("MODEL_DIR", dir, "Model directory")->required();
  for (auto [name, value, what] : {std::tuple{"--threads", &threads, "OpenMP threads"},
                                   {"--prompt", &prompt, "Prompt tokens"},
                                   {"--gen", &gen, "Generated tokens"},
                                   {"--reps", &reps, "Repetitions (median)"},
                                   {"--chunk", &chunk, "Prefill chunk (default: the whole prompt)"},
                                   {"--near", &near, "Depth of the companion decode"}})
    app.add_option(name, *value, what)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--mmap", mmap_mode, "Map the weights instead of reading them");
  app.add_flag("--precise", precise, "FP32 activations in every product");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  try {
    double t0 = bench::now_s();
    model::LoadOptions lo;
    lo.mode = mmap_mode ? LoadMode::Mmap : LoadMode::Read;
    auto m = model::Model::load(dir, lo);
    double load_s = bench::now_s() - t0;
    const auto& cfg = m->config();
    // The engine's cache: BF16 entries, F32 with --precise.
    const DType kv_dtype = precise ? DType::F32 : DType::BF16;
    model::KVCache cache(cfg, 1, prompt + gen + 1, 0, kv_dtype);
    // The companion sequence decoded at depth `near` next to every token at depth `prompt`.
    model::KVCache near_cache(cfg, 1, near + gen + 1, 0, kv_dtype);
    model::ModelStats st = model::model_stats(*m);

    // Matrix-product FLOPs of the prefill: 2 per active weight per token, without the embedding
    // (a row lookup) and with the head applied to the last position only, as prefill does; the
    // attention core is counted separately: scores and values over the causal triangle, per head.
    const double vh = double(cfg.vocab_size) * double(cfg.hidden_size);
    const double head = cfg.tie_word_embeddings ? 0.0 : vh;
    const double attn_flops = double(cfg.num_hidden_layers) * cfg.num_attention_heads * prompt *
                              (prompt + 1) / 2.0 * 2.0 * double(cfg.qk_head_dim() + cfg.v_head_dim);
    const double flops = 2.0 * (double(st.params_active) - vh - head) * prompt + 2.0 * vh + attn_flops;

    std::printf("model            %s (%s, %lld layers)\n", dir.c_str(), cfg.model_type.c_str(),
                (long long)cfg.num_hidden_layers);
    std::printf("threads          %d   load %s: %.2f s\n", threads, mmap_mode ? "mmap" : "read", load_s);
    // This machine shares its host: bandwidth and FLOP rate drift by +-30% within seconds. So
    // each decoded token is paired with a 256 MiB bandwidth probe taken right before it, and the
    // roofline ratio is (weight bytes / decode time) / (probe bytes / probe time) over the pairs;
    // each prefill is compared with a bf16 peak measured right before it. Figures are medians
    // over the repetitions. A first unmeasured pass warms pages and gives the peak RSS (the
    // probes' own buffers would count in it otherwise).
    std::mt19937 rng(1);
    std::vector<int32_t> ids(static_cast<size_t>(prompt));
    std::vector<float> logits;
    model::ForwardOptions po;
    po.precision = precise ? kernels::Precision::F32 : kernels::Precision::BF16;
    auto run_prefill = [&] {
      for (auto& id : ids) id = int32_t(rng() % uint32_t(cfg.vocab_size));
      cache.set_length(0, 0);
      const double t = bench::now_s();
      const int step = chunk > 0 ? chunk : prompt;
      for (int c0 = 0; c0 < prompt; c0 += step) {
        const int n = std::min(step, prompt - c0);
        model::forward(*m, cache,
                       model::Batch{std::vector<int32_t>(ids.begin() + c0, ids.begin() + c0 + n),
                                    {{0, c0, n, false}}},
                       logits, po);
      }
      return bench::now_s() - t;
    };
    // One greedy token at position `pos` of a cache whose last logits are `lg`; its seconds.
    auto decode_at = [&](model::KVCache& kv, std::vector<float>& lg, int64_t pos) {
      const int32_t next = int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
      const double t = bench::now_s();
      model::forward(*m, kv, model::Batch{{next}, {{0, pos, 1, false}}}, lg, po);
      return bench::now_s() - t;
    };
    auto decode_one = [&](int i) { return decode_at(cache, logits, prompt + i); };
    std::vector<float> near_logits;
    auto near_prefill = [&] {
      std::vector<int32_t> near_ids(static_cast<size_t>(near));
      for (auto& id : near_ids) id = int32_t(rng() % uint32_t(cfg.vocab_size));
      model::forward(*m, near_cache, model::Batch{near_ids, {{0, 0, near, false}}}, near_logits, po);
    };
    auto near_decode_one = [&](int i) { return decode_at(near_cache, near_logits, near + i); };
    run_prefill();
    near_prefill();
    for (int i = 0; i < std::min(gen, 4); ++i) decode_one(i), near_decode_one(i);
    const double rss = peak_rss_bytes();

    const size_t probe = size_t(256) << 20;
    std::vector<double> pre_tps, pre_ratio, dec_tps, dec_ratio, bws, peaks, near_tps, depth_ratio;
    for (int r = 0; r < reps; ++r) {
      const double peak = bench::bf16_peak_gflops(threads);
      const double prefill_s = run_prefill();
      near_prefill();
      // Each deep token is paired with a near one (in alternating order), so both see the same
      // bandwidth and their ratio is what depth costs, not what the host was doing.
      double probe_s = 0, decode_s = 0, near_s = 0;
      for (int i = 0; i < gen; ++i) {
        probe_s += double(probe) / 1e9 / bench::read_bandwidth_gbs(threads, probe, 1);
        if (i % 2) near_s += near_decode_one(i);
        decode_s += decode_one(i);
        if (i % 2 == 0) near_s += near_decode_one(i);
      }
      const double bw = double(gen) * double(probe) / 1e9 / probe_s;
      const double roofline_tps = bw * 1e9 / double(st.weight_bytes_per_token);
      pre_tps.push_back(prompt / prefill_s);
      pre_ratio.push_back(flops / prefill_s / 1e9 / peak);
      dec_tps.push_back(gen / decode_s);
      dec_ratio.push_back(gen / decode_s / roofline_tps);
      near_tps.push_back(gen / near_s);
      depth_ratio.push_back(near_s / decode_s);
      bws.push_back(bw);
      peaks.push_back(peak);
      std::printf("rep %d            peak %.0f GFLOP/s, prefill %.1f tok/s (%.1f%%); bandwidth %.1f GB/s, "
                  "decode %.2f tok/s (%.1f%%), at depth %d %.2f tok/s (ratio %.1f%%)\n",
                  r + 1, peak, pre_tps.back(), 100 * pre_ratio.back(), bw, dec_tps.back(),
                  100 * dec_ratio.back(), near, near_tps.back(), 100 * depth_ratio.back());
    }
    const double weights = double(st.weight_bytes_total);
    const double kv = double(cache.bytes_per_token()) * double(prompt + gen + 1);
    std::printf("machine          read bandwidth %.1f GB/s, bf16 dot peak %.0f GFLOP/s (medians)\n",
                median(bws), median(peaks));
    std::printf("prefill          %d tokens: %.1f tok/s, %.0f GFLOP/s = %.1f%% of bf16 peak (%s)\n",
                prompt, median(pre_tps), median(pre_tps) / prompt * flops / 1e9,
                100.0 * median(pre_ratio), precise ? "f32 activations" : "bf16 activations");
    std::printf("decode           %d tokens: %.2f tok/s; %.1f MB weights/token; %.1f%% of roofline\n",
                gen, median(dec_tps), st.weight_bytes_per_token / 1e6, 100.0 * median(dec_ratio));
    std::printf("decode by depth  at %d: %.2f tok/s, at %d: %.2f tok/s (same pairs): ratio %.1f%%\n",
                prompt, median(dec_tps), near, median(near_tps), 100.0 * median(depth_ratio));
    std::printf("peak RSS         %.2f GB (weights %.2f GB + KV %.3f GB = %.2f GB; ratio %.3f)\n",
                rss / 1e9, weights / 1e9, kv / 1e9, (weights + kv) / 1e9, rss / (weights + kv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
