// Speculative decoding with the MTP module (issue: inference beyond the reference).
//   bench_spec MODEL_DIR [--eps 0.1] [--threads 2] [--gen 96] [--rounds 3] [--work DIR] [--draft-tokens K]
//   bench_spec MODEL_DIR --trained --prompts FILE.jsonl [--count 8] [--gen 96] [--rounds 3] [--draft-tokens K]
// MODEL_DIR: a BF16 checkpoint with an MTP module. Two kinds:
//   - random (`seek make-model --preset v2-lite --layers 4 --mtp 1 DIR` gives a memory-bound
//     one): its MTP module drafts nothing useful, so the bench first writes its draftable copy
//     (tools/draftable_model.h: same tensors, same bytes per step, an MTP module that drafts the
//     bigram part of the main model; --eps sets how often it is right) and measures on that;
//   - --trained (bench/spec_trained.sh trains one): the model as it is, on the first --count
//     conversations of --prompts (chat JSONL, {"messages": [...]}, as `seek make-data` writes
//     sft-val.jsonl: each conversation's user turns rendered with the model's chat template),
//     greedy until EOS or --gen tokens.
// It measures:
//   - the costs of one decoding step c(0), of verifying k drafts (the same step with k + 1
//     tokens, c(k), k = 1..K) and of an MTP pass (the module and its head, m), medians over
//     interleaved repeats;
//   - batch-1 greedy decoding through the engine without and with --speculative (K drafts per
//     step, chained), interleaved rounds: tokens/s of each, their ratio, the acceptance rate of
//     the drafts, the tokens per verifying step E, and the ratio the costs predict,
//     E·c(0) / (c(K) + K·m); and the default adaptive engine (k per sequence, 0..K);
//   - the projection for DeepSeek-V3's geometry at the report's 85-90% acceptance at batch 1,
//     memory-bound: bytes of a step, of a verifying step (the second token's own experts) and of
//     the MTP module, from V3's config.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/io.h"
#include "generate/engine.h"
#include "model/kv_cache.h"
#include "model/mtp.h"
#include "model/transformer.h"
#include "roofline.h"
#include "tools/draftable_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tools/make_model.h"

using namespace seek;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Weight bytes one token reads in the main model and in MTP module 0, from the geometry alone
// (FP8 linear layers as the V3 release stores them: 1 byte a weight plus block scales; BF16
// embeddings, head and eh_proj).
struct TokenBytes {
  double main = 0, mtp = 0;
  double second = 0;  // what a second token adds: the routed experts it does not share
  double expert = 0, moe_layers = 0, k = 0, n = 1;  // one routed expert's bytes; routing
  // Extra bytes of a step over `tokens` tokens against one: each picks k of the n experts on its
  // own, so together they read n·(1 − (1 − k/n)^tokens) of them.
  double extra(int tokens) const {
    return moe_layers * expert * (n * (1.0 - std::pow(1.0 - k / n, tokens)) - k);
  }
};
TokenBytes v3_token_bytes(const model::ModelConfig& c) {
  const double H = double(c.hidden_size), nh = double(c.num_attention_heads);
  const double qk = double(c.qk_nope_head_dim + c.qk_rope_head_dim);
  const double attn = H * double(c.q_lora_rank) + double(c.q_lora_rank) * nh * qk +
                      H * double(c.kv_lora_rank + c.qk_rope_head_dim) +
                      double(c.kv_lora_rank) * nh * double(c.qk_nope_head_dim + c.v_head_dim) +
                      nh * double(c.v_head_dim) * H;
  const double dense = 3.0 * H * double(c.intermediate_size);
  const double moe = 3.0 * H * double(c.moe_intermediate_size) *
                         double(c.num_experts_per_tok + c.n_shared_experts) +
                     2.0 * H * double(c.n_routed_experts);  // + the BF16 router
  const double head = 2.0 * double(c.vocab_size) * H;
  const double k_dense = double(c.first_k_dense_replace);
  TokenBytes b;
  b.main = k_dense * (attn + dense) + (double(c.num_hidden_layers) - k_dense) * (attn + moe) + head;
  b.mtp = attn + moe + 2.0 * 2.0 * H * H + head;  // its block, eh_proj [H, 2H], shared head
  // Another token picks k of the n experts on its own: on average k·(1 − k/n) are new.
  const double k = double(c.num_experts_per_tok), n = double(c.n_routed_experts);
  b.second = (double(c.num_hidden_layers) - k_dense) * 3.0 * H * double(c.moe_intermediate_size) *
             k * (1.0 - k / n);
  b.expert = 3.0 * H * double(c.moe_intermediate_size);
  b.moe_layers = double(c.num_hidden_layers) - k_dense;
  b.k = k;
  b.n = n;
  return b;
}

// The first `count` conversations of a chat JSONL file, up to their first assistant turn,
// rendered with the model's template (generation prompt added) and encoded.
std::vector<std::vector<int32_t>> chat_prompts(const std::string& model_dir, const std::string& file,
                                               int count) {
  const auto tok = tokenizer::Tokenizer::load(model_dir);
  const auto tmpl = tokenizer::ChatTemplate::load(model_dir);
  std::vector<std::vector<int32_t>> out;
  const std::string text = read_file(file);
  size_t pos = 0;
  for (int line = 1; pos < text.size() && int(out.size()) < count; ++line) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view l(text.data() + pos, end - pos);
    pos = end + 1;
    if (l.empty()) continue;
    const auto j = nlohmann::json::parse(l, nullptr, false);
    if (j.is_discarded() || !j.contains("messages") || !j["messages"].is_array())
      throw Error(fmt::format("{}:{}: not a {{\"messages\": [...]}} object", file, line));
    nlohmann::json msgs = nlohmann::json::array();
    for (const auto& m : j["messages"]) {
      if (m.value("role", "") == "assistant") break;
      msgs.push_back(m);
    }
    out.push_back(tok.encode(tmpl.render(msgs, true), false));
  }
  if (out.empty()) throw Error(fmt::format("{}: no conversations", file));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, work, prompts_file;
  int threads = 2, gen = 96, rounds = 3, count = 8, K = generate::EngineOptions{}.spec_tokens;
  float eps = 0.1f;
  bool trained = false;
  CLI::App app{"bench_spec: MTP speculative decoding, speed-up and acceptance at batch 1"};
  app.add_option("MODEL_DIR", dir, "BF16 model directory with an MTP module")->required();
  app.add_option("--eps", eps, "Draftable copy: scale of the blocks' outputs (smaller: more accepted)")
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--gen", gen, "Tokens per generation")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "Interleaved rounds (median)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--work", work, "Where the draftable copy goes (default: MODEL_DIR-draftable-EPS)");
  app.add_option("--draft-tokens", K, "Drafts per step at most (chained)")
      ->capture_default_str()->check(CLI::Range(1, 8));
  app.add_flag("--trained", trained, "Measure MODEL_DIR itself (a trained MTP module) on --prompts");
  app.add_option("--prompts", prompts_file, "--trained: chat JSONL whose conversations give the prompts");
  app.add_option("--count", count, "--trained: conversations to decode per round")
      ->capture_default_str()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  try {
    namespace fs = std::filesystem;
    if (trained) {
      if (prompts_file.empty()) throw Error("--trained needs --prompts FILE");
      work = dir;
    } else {
      if (work.empty()) work = fmt::format("{}-draftable-{}", fs::path(dir).lexically_normal().string(), eps);
      if (!fs::exists(fs::path(work) / "model.safetensors")) {
        std::printf("writing the draftable copy to %s\n", work.c_str());
        tools::write_draftable_model(dir, work, eps);
      }
    }
    auto m = model::Model::load(work);
    const model::ModelConfig& cfg = m->config();
    const model::ModelStats st = model::model_stats(*m);
    std::vector<std::vector<int32_t>> prompts;
    if (trained) {
      prompts = chat_prompts(work, prompts_file, count);
      std::printf("model            %s (%lld layers, trained MTP module): %.1f MB weights read per token; "
                  "%zu prompts from %s\n",
                  work.c_str(), (long long)cfg.num_hidden_layers, st.weight_bytes_per_token / 1e6,
                  prompts.size(), prompts_file.c_str());
    } else {
      std::vector<int32_t> ids(32);
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(3 + int64_t(i) * 7919 % (cfg.vocab_size - 3));
      prompts.push_back(ids);
      std::printf("model            %s (%lld layers, eps %.3g): %.1f MB weights read per token\n",
                  work.c_str(), (long long)cfg.num_hidden_layers, eps, st.weight_bytes_per_token / 1e6);
    }

    // ---- step costs ----
    const std::vector<int32_t>& ids = prompts[0];
    const int64_t prompt = int64_t(ids.size());
    model::KVCache cache(cfg, 1, prompt + 16, 1, DType::BF16);  // the engine's (K <= 8)
    model::ForwardOptions fo;
    fo.precision = kernels::Precision::BF16;
    std::vector<float> logits, hidden, draft_logits;
    fo.last_hidden = &hidden;
    model::forward(*m, cache, model::Batch{ids, {{0, 0, prompt, false}}}, logits, fo);
    const std::vector<float> h_last(hidden.end() - cfg.hidden_size, hidden.end());
    auto timed = [](auto&& f) {
      const double t = bench::now_s();
      f();
      return bench::now_s() - t;
    };
    std::vector<std::vector<double>> cs(size_t(K) + 1);  // c(k): a step with k + 1 tokens
    std::vector<double> ms;
    for (int r = 0; r < 12; ++r) {
      for (int k = 0; k <= K; ++k)
        cs[size_t(k)].push_back(timed([&] {
          const std::vector<int32_t> toks(size_t(k) + 1, 5);
          model::forward(*m, cache, model::Batch{toks, {{0, prompt, k + 1, k > 0}}}, logits, fo);
        }));
      ms.push_back(timed([&] {
        model::mtp_draft(*m, cache, h_last.data(), model::Batch{{5}, {{0, prompt - 1, 1, false}}},
                         draft_logits, fo);
      }));
    }
    std::vector<double> c(size_t(K) + 1);
    for (int k = 0; k <= K; ++k) c[size_t(k)] = median(cs[size_t(k)]);
    const double c1 = c[0], mc = median(ms);
    std::printf("step costs       one token %.2f ms; MTP pass %.2f ms = %.2f x\n", c1 * 1e3, mc * 1e3, mc / c1);
    for (int k = 1; k <= K; ++k)
      std::printf("                 verifying %d draft%s (%d tokens) %.2f ms = %.2f x\n", k, k > 1 ? "s" : "",
                  k + 1, c[size_t(k)] * 1e3, c[size_t(k)] / c1);

    // ---- the engine, batch 1, interleaved ----
    generate::EngineOptions eo;
    eo.max_seqs = 1;
    eo.cache_slots = 0;
    size_t longest = 0;
    for (const auto& p : prompts) longest = std::max(longest, p.size());
    eo.context = int64_t(longest) + gen + 8;
    // Three engines, each alive only while it runs (an idle engine's threads would share the
    // cores): plain, speculative forced on (what drafting does at this acceptance, whatever it
    // is) and the default adaptive one (drafting stops where it does not pay).
    generate::EngineOptions plain = eo, spec = eo, adaptive = eo;
    spec.speculative = adaptive.speculative = true;
    spec.spec_tokens = adaptive.spec_tokens = K;
    spec.spec_adaptive = false;
    adaptive.spec_adaptive = true;
    // Decoding speed of one engine over every prompt: tokens after the first (which prefill
    // gives) per second of decoding.
    struct Run {
      int64_t tokens = 0, drafted = 0, accepted = 0, steps = 0;
      std::vector<int64_t> drafted_at, accepted_at;  // by position in the step
      double seconds = 0;
      std::vector<std::vector<int32_t>> outputs;
      double tps() const { return double(tokens) / seconds; }
    };
    auto run = [&](const generate::EngineOptions& o) {
      generate::Engine e(*m, nullptr, o);
      Run out;
      for (const auto& p : prompts) {
        generate::EngineRequest req;
        req.prompt = p;
        req.sampling.temperature = 0.0f;
        req.max_tokens = gen;
        req.ignore_eos = !trained;  // a trained model ends its answers; a random one never does
        const generate::EngineResult res = e.generate(req);
        out.tokens += res.completion_tokens - 1;
        out.steps += res.decode_steps;
        for (size_t j = 0; j < res.drafted_at.size(); ++j) {
          if (out.drafted_at.size() <= j) out.drafted_at.resize(j + 1), out.accepted_at.resize(j + 1);
          out.drafted_at[j] += res.drafted_at[j];
          out.accepted_at[j] += res.accepted_at[j];
        }
        out.seconds += res.decode_seconds;
        out.drafted += res.drafted_tokens;
        out.accepted += res.accepted_tokens;
        out.outputs.push_back(res.tokens);
      }
      return out;
    };
    std::vector<double> tps_plain, tps_spec, ratios, adaptive_ratios;
    int64_t drafted = 0, accepted = 0, spec_tokens = 0, spec_steps = 0;
    std::vector<int64_t> drafted_at(static_cast<size_t>(K)), accepted_at(static_cast<size_t>(K));
    int same = 0;
    for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms pages and caches, unmeasured
      const Run a = run(plain);
      const Run b = run(spec);
      const Run c = run(adaptive);
      if (r == 0) continue;
      adaptive_ratios.push_back(c.tps() / a.tps());
      tps_plain.push_back(a.tps());
      tps_spec.push_back(b.tps());
      ratios.push_back(tps_spec.back() / tps_plain.back());
      drafted += b.drafted;
      accepted += b.accepted;
      spec_tokens += b.tokens;
      spec_steps += b.steps;
      for (size_t j = 0; j < b.drafted_at.size() && j < size_t(K); ++j) {
        drafted_at[j] += b.drafted_at[j];
        accepted_at[j] += b.accepted_at[j];
      }
      same += a.outputs == b.outputs && a.outputs == c.outputs;
      std::printf("round %d          plain %.2f tok/s, speculative %.2f tok/s (x%.2f), %lld/%lld drafts accepted, "
                  "%lld tokens\n",
                  r, tps_plain.back(), tps_spec.back(), ratios.back(), (long long)b.accepted,
                  (long long)b.drafted, (long long)a.tokens);
    }
    const double alpha = drafted ? double(accepted) / double(drafted) : 0.0;
    // Tokens per verifying step (a step that samples the first token after the prompt's last
    // is not a decode step; each generation's decode_steps counts the forwards after it).
    const double per_step = double(spec_tokens) / double(std::max<int64_t>(spec_steps, 1));
    std::printf("decode           plain %.2f tok/s, speculative (%d drafts) %.2f tok/s: x%.2f (median of %d); "
                "acceptance %.1f%%, %.2f tokens per step; same tokens in %d/%d rounds\n",
                median(tps_plain), K, median(tps_spec), median(ratios), rounds, 100 * alpha, per_step, same,
                rounds);
    // a_j: acceptance of the draft at position j given the ones before it were accepted.
    std::vector<double> a_at(size_t(K), 0.0);
    std::string by_position;
    for (int j = 0; j < K; ++j) {
      a_at[size_t(j)] = drafted_at[size_t(j)] ? double(accepted_at[size_t(j)]) / double(drafted_at[size_t(j)]) : 0.0;
      by_position += fmt::format("{}a{} {:.1f}% ({}/{})", j ? ", " : "", j + 1, 100 * a_at[size_t(j)],
                                 accepted_at[size_t(j)], drafted_at[size_t(j)]);
    }
    std::printf("by position      %s\n", by_position.c_str());
    std::printf("predicted        E c(0) / (c(K) + K m) = x%.2f\n", per_step * c1 / (c[size_t(K)] + K * mc));
    std::printf("adaptive         x%.2f of plain (drafting stops where the measured costs say it does not pay)\n",
                median(adaptive_ratios));

    // ---- projection for V3 ----
    const TokenBytes v3 = v3_token_bytes(tools::preset("v3"));
    const double draft_share = v3.mtp / v3.main;
    const double v3_verify = 1.0 + v3.second / v3.main;  // memory-bound: bytes read
    std::printf("V3 projection    main %.1f GB/token, MTP %.2f GB/token (%.1f%%), a second token's own experts "
                "%.1f GB (verify x%.2f, memory-bound):\n",
                v3.main / 1e9, v3.mtp / 1e9, 100 * draft_share, v3.second / 1e9, v3_verify);
    // k drafts: the first accepted at the report's rate, the later ones as much less often as
    // this run's chained drafts were (a_j / a_1); the k + 1 tokens read the union of their
    // experts, and k MTP passes run.
    for (double a : {0.85, 0.90}) {
      std::printf("                 acceptance %.0f%% at batch 1:", 100 * a);
      double expected = 1.0, reach = 1.0;
      for (int k = 1; k <= K; ++k) {
        reach *= k == 1 ? a : a_at[0] > 0 ? std::min(1.0, a * a_at[size_t(k - 1)] / a_at[0]) : 0.0;
        expected += reach;
        std::printf(" x%.2f with %d draft%s%s", expected / (1.0 + v3.extra(k + 1) / v3.main + k * draft_share), k,
                    k > 1 ? "s" : "", k < K ? "," : "");
      }
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_spec: %s\n", e.what());
    return 1;
  }
  return 0;
}
