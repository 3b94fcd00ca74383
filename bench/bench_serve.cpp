// Continuous-batching throughput and latency of the serving engine: aggregate decode tokens/s
// and p50 / p99 time to first token at 1, 4, 16 and 64 concurrent streams, on a random model of
// DeepSeek-V2-Lite geometry (layers cut to fit memory unless --layers says otherwise). Two loads:
//  * burst: n requests with same-length prompts arrive at once; decode tokens/s counts from the
//    first token to the last (every stream decodes together), TTFT includes waiting for all n
//    prefills, since each prompt's prefill shares the steps with the others.
//  * steady: n clients in a closed loop (a client sends its next request when the previous one
//    ends, as vLLM's benchmark_serving does with --max-concurrency), starts staggered over one
//    request's duration and output lengths uniform in [gen/2, 3·gen/2], so requests arrive while
//    the others decode. Each client's first request (the ramp) is not counted; decode tokens/s
//    is over the window where all n clients are past it.
//
// Targets (from the serving issue): at 16 streams, aggregate decode throughput >= 4x the
// single-stream figure; p99 TTFT at 16 streams < 2x the single-stream prefill time of the same
// prompt (the 1-stream TTFT).
//
//   bench_serve [--model DIR] [--layers N] [--prompt N] [--gen N] [--streams 1,4,16,64]
//               [--requests N] (per client, steady load; default 3)
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "generate/engine.h"
#include "model/transformer.h"
#include "tools/make_model.h"

using namespace seek;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string model;
  int layers = 2;
  int prompt = 128;
  int gen = 64;
  std::vector<int> streams = {1, 4, 16, 64};
  int requests = 3;
};

void add_options(CLI::App& app, Args& a) {
  app.add_option("--model", a.model, "Model directory (default: a random V2-Lite-geometry model)");
  app.add_option("--layers", a.layers, "Layers of the random model")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--prompt", a.prompt, "Prompt tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--gen", a.gen, "Generated tokens per stream")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--streams", a.streams, "Concurrent streams, comma-separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  // The first request of each client is the ramp and is not counted: at least one more.
  app.add_option("--requests", a.requests, "Requests per client, steady load (>= 2)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[i];
}

std::vector<int32_t> distinct_prompt(int prompt_len, int64_t vocab, uint64_t salt) {
  std::vector<int32_t> p;
  for (int t = 0; t < prompt_len; ++t)  // distinct prompts: no prefix-cache hits
    p.push_back(int32_t(1000 + (salt * 104729 + uint64_t(t) * 15485863) % uint64_t(vocab - 2000)));
  return p;
}

struct Round {
  double decode_tps = 0, ttft_p50 = 0, ttft_p99 = 0, seconds = 0, cores = 0;
  int64_t tokens = 0;
  // False when the steady load's window (every client past its ramp, none finished) held no
  // decode token: then there is no throughput figure to print.
  bool measured = true;
};

Round run_round(generate::Engine& e, int n, int prompt_len, int gen, int64_t vocab, int salt) {
  struct Done {
    generate::EngineResult r;
    Clock::time_point first, end;
  };
  std::vector<std::promise<Done>> promises(static_cast<size_t>(n));
  std::vector<std::future<Done>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  for (int i = 0; i < n; ++i) {
    generate::EngineRequest req;
    req.prompt = distinct_prompt(prompt_len, vocab, uint64_t(salt * 7919 + i));
    req.sampling.temperature = 0.0f;
    req.max_tokens = gen;
    req.ignore_eos = true;
    auto first = std::make_shared<Clock::time_point>();
    generate::EngineCallbacks cb;
    cb.on_token = [first, seen = false](const generate::TokenEvent&) mutable {
      if (!seen) *first = Clock::now();
      seen = true;
    };
    cb.on_done = [&p = promises[size_t(i)], first](const generate::EngineResult& r) {
      p.set_value(Done{r, *first, Clock::now()});
    };
    e.submit(std::move(req), std::move(cb));
  }
  std::vector<double> ttft;
  Clock::time_point first_token = Clock::time_point::max(), last_end = t0;
  int64_t decoded = 0;
  for (auto& f : futures) {
    const Done d = f.get();
    ttft.push_back(d.r.ttft_seconds);
    first_token = std::min(first_token, d.first);
    last_end = std::max(last_end, d.end);
    decoded += d.r.completion_tokens - 1;  // the first token comes from prefill
  }
  Round r;
  r.ttft_p50 = pct(ttft, 0.50);
  r.ttft_p99 = pct(ttft, 0.99);
  r.seconds = std::chrono::duration<double>(last_end - t0).count();
  r.decode_tps = double(decoded) / std::chrono::duration<double>(last_end - first_token).count();
  r.tokens = decoded;
  r.cores = (cpu_seconds() - cpu0) / r.seconds;
  return r;
}

// Closed loop: n clients, `requests` each. `stagger` spreads the clients' first requests.
Round run_steady(generate::Engine& e, int n, int requests, int prompt_len, int gen, int64_t vocab,
                 double stagger) {
  struct Client {
    std::vector<double> ttft;                  // requests 2.. only
    std::vector<Clock::time_point> tokens;     // decode-token times, requests 2..
    Clock::time_point first_done, last_done;
  };
  std::vector<Client> clients(static_cast<size_t>(n));
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  std::vector<std::thread> threads;
  for (int c = 0; c < n; ++c)
    threads.emplace_back([&, c] {
      Client& cl = clients[size_t(c)];
      std::mt19937 rng(uint32_t(1000 + c));
      std::uniform_int_distribution<int> len(std::max(1, gen / 2), std::max(1, gen * 3 / 2));
      std::this_thread::sleep_until(t0 + std::chrono::duration<double>(stagger * c / n));
      for (int q = 0; q < requests; ++q) {
        generate::EngineRequest req;
        req.prompt = distinct_prompt(prompt_len, vocab, uint64_t(c) * 1000003 + uint64_t(q) * 7919 + 17);
        req.sampling.temperature = 0.0f;
        req.max_tokens = len(rng);
        req.ignore_eos = true;
        std::promise<generate::EngineResult> done;
        auto fut = done.get_future();
        generate::EngineCallbacks cb;
        const bool counted = q > 0;
        cb.on_token = [&cl, counted, seen = false](const generate::TokenEvent&) mutable {
          if (counted && seen) cl.tokens.push_back(Clock::now());  // the first is prefill's
          seen = true;
        };
        cb.on_done = [&done](const generate::EngineResult& r) { done.set_value(r); };
        e.submit(std::move(req), std::move(cb));
        const generate::EngineResult r = fut.get();
        if (q == 0) cl.first_done = Clock::now();
        else cl.ttft.push_back(r.ttft_seconds);
      }
      cl.last_done = Clock::now();
    });
  for (auto& t : threads) t.join();
  Clock::time_point w0 = t0, w1 = Clock::time_point::max(), end = t0;
  std::vector<double> ttft;
  for (const Client& cl : clients) {
    w0 = std::max(w0, cl.first_done);
    w1 = std::min(w1, cl.last_done);
    end = std::max(end, cl.last_done);
    ttft.insert(ttft.end(), cl.ttft.begin(), cl.ttft.end());
  }
  Round r;
  for (const Client& cl : clients)
    for (auto t : cl.tokens) r.tokens += t >= w0 && t <= w1;
  r.measured = w1 > w0 && r.tokens > 0;
  if (r.measured)
    r.decode_tps = double(r.tokens) / std::chrono::duration<double>(w1 - w0).count();
  r.ttft_p50 = pct(ttft, 0.50);
  r.ttft_p99 = pct(ttft, 0.99);
  r.seconds = std::chrono::duration<double>(end - t0).count();
  r.cores = (cpu_seconds() - cpu0) / r.seconds;
  return r;
}

}  // namespace

int main(int argc, char** argv) try {
  Args a;
  CLI::App app{"bench_serve: continuous-batching throughput and TTFT (see bench_serve.cpp)"};
  add_options(app, a);
  CLI11_PARSE(app, argc, argv);
  std::string dir = a.model;
  std::filesystem::path tmp;
  if (dir.empty()) {
    tools::MakeModelOptions mo;
    mo.config = tools::preset("v2-lite");
    mo.config.num_hidden_layers = a.layers;
    mo.config.num_nextn_predict_layers = 0;
    tmp = std::filesystem::temp_directory_path() / ("seek-bench-serve-" + std::to_string(::getpid()));
    std::fprintf(stderr, "bench_serve: writing a random V2-Lite-geometry model (%d layers) to %s\n",
                 a.layers, tmp.c_str());
    tools::make_random_model(mo, tmp.string());
    dir = tmp.string();
  }
  auto model = model::Model::load(dir);
  const auto& cfg = model->config();
  const int max_streams = *std::max_element(a.streams.begin(), a.streams.end());

  generate::EngineOptions eo;
  eo.max_seqs = max_streams;
  eo.cache_slots = 0;
  eo.max_queue = max_streams;
  eo.context = a.prompt + a.gen + 8;
  eo.max_batch_tokens = std::max<int64_t>(2048, int64_t(max_streams) * a.prompt);
  eo.prefill_chunk = a.prompt;
  generate::Engine engine(*model, nullptr, eo);

  std::printf("bench_serve: %s, %lld layers, hidden %lld, %lld routed experts (top-%lld); prompt %d, "
              "generate %d tokens per stream\n",
              cfg.model_type.c_str(), (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
              (long long)cfg.n_routed_experts, (long long)cfg.num_experts_per_tok, a.prompt, a.gen);
  run_round(engine, 1, a.prompt, 4, cfg.vocab_size, 999);  // warm-up: pages, threads
  auto table = [&](const char* load, auto&& round) {
    std::printf("%s load\n%8s %14s %12s %12s %10s %7s\n", load, "streams", "decode tok/s",
                "TTFT p50 ms", "TTFT p99 ms", "wall s", "cores");
    double single_tps = 0, single_ttft = 0;
    for (int n : a.streams) {
      const Round r = round(n);
      if (n == 1) single_tps = r.measured ? r.decode_tps : 0.0, single_ttft = r.ttft_p50;
      const std::string tps = r.measured ? fmt::format("{:.1f}", r.decode_tps) : "-";
      std::printf("%8d %14s %12.1f %12.1f %10.2f %7.2f", n, tps.c_str(), r.ttft_p50 * 1e3,
                  r.ttft_p99 * 1e3, r.seconds, r.cores);
      if (!r.measured)
        std::printf("   window too short: no client decoded while all were past their first "
                    "request (raise --requests or --gen)");
      else if (n > 1 && single_tps > 0)
        std::printf("   throughput x%.2f vs 1 stream, p99 TTFT x%.2f vs 1-stream prefill",
                    r.decode_tps / single_tps, r.ttft_p99 / single_ttft);
      std::printf("\n");
      std::fflush(stdout);
    }
    return single_ttft;
  };
  table("burst", [&](int n) { return run_round(engine, n, a.prompt, a.gen, cfg.vocab_size, n); });
  // One request of the single stream lasts about TTFT + gen decode steps: stagger over that.
  const Round one = run_round(engine, 1, a.prompt, a.gen, cfg.vocab_size, 12345);
  const double request_s = one.ttft_p50 + a.gen / std::max(one.decode_tps, 1e-9);
  table("steady", [&](int n) {
    return run_steady(engine, n, a.requests, a.prompt, a.gen, cfg.vocab_size, request_s);
  });
  std::printf("targets at 16 streams: throughput >= x4.00, p99 TTFT < x2.00\n");
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_serve: error: %s\n", e.what());
  return 1;
}
