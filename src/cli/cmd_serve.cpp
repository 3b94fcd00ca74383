// seek serve MODEL_DIR: the DeepSeek API and a web chat on this machine, one continuous-batching
// engine behind every request. Ctrl-C / SIGTERM stop accepting, let running requests finish for
// a few seconds, then exit.
#include <malloc.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"
#include "generate/engine.h"
#include "serve/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

namespace {

struct ServeFlags {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::string name;         // served model name (default: the directory's name)
  std::string models_file;  // JSON model list: names, modes, limits
  int64_t ctx = 8192;
  int max_seqs = 16;
  int cache_slots = 4;
  int queue = 64;
  double kv_budget_gb = 4.0;
  int64_t prefill_chunk = 512;
  int64_t batch_tokens = 2048;
  double timeout = 600.0;
  double keepalive = 5.0;
  double drain = 5.0;
  double max_body_mb = 8.0;
  std::string web_dir;
  bool precise = false;
  bool speculative = false;
  int draft_tokens = generate::EngineOptions{}.spec_tokens;
  bool content_special_tokens = false;
  std::string test_script;
  bool test_hooks = false;
  LoadFlags load;
};

int run_serve(const ServeFlags& f) {
  check_model_dir(f.model_dir);
  auto model = load_model(f.model_dir, f.load);
  auto tok = load_tokenizer(f.model_dir);
  std::optional<tokenizer::ChatTemplate> tmpl;
  try {
    tmpl = tokenizer::ChatTemplate::load(f.model_dir);
  } catch (const Error& e) {
    write_stderr(fmt::format("seek serve: no chat template ({}); only /v1/completions will work\n", e.what()));
  }

  serve::ServerOptions so;
  so.host = f.host;
  so.port = f.port;
  so.api_key = f.api_key;
  so.request_timeout = f.timeout;
  so.keepalive_interval = f.keepalive;
  so.max_body_bytes = size_t(f.max_body_mb * 1024 * 1024);
  so.web_dir = f.web_dir;
  so.literal_content = !f.content_special_tokens;
  so.test_script = f.test_script;
  so.test_hooks = f.test_hooks;
  std::string name = f.name;
  if (name.empty())
    name = std::filesystem::path(f.model_dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = "seek";
  so.models = f.models_file.empty()
                  ? serve::ModelRegistry::defaults(name)
                  : serve::ModelRegistry::from_json(parse_json(read_file(f.models_file), f.models_file),
                                                    f.models_file);

  generate::EngineOptions eo;
  eo.context = f.ctx;
  eo.max_seqs = f.max_seqs;
  eo.cache_slots = f.cache_slots;
  eo.max_queue = f.queue;
  eo.kv_budget_bytes = int64_t(f.kv_budget_gb * double(1ll << 30));
  eo.prefill_chunk = f.prefill_chunk;
  eo.max_batch_tokens = f.batch_tokens;
  eo.precise = f.precise;
  eo.speculative = f.speculative;
  eo.spec_tokens = f.draft_tokens;

  // SIGINT / SIGTERM are taken by one waiting thread (sigwait), so every thread started from
  // here on has them blocked and no handler runs in the middle of a request.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // Request bodies and prompts of megabytes come and go on many worker threads. glibc raises its
  // mmap threshold (to 32 MiB) after the first large block is freed, after which such blocks
  // come from per-thread arenas whose free tops it keeps (up to 64 MiB each, and malloc_trim
  // does not reach them): RSS then grew by hundreds of MB after a few over-long requests. A
  // fixed threshold keeps every block of 1 MiB or more in its own mapping, returned on free.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Each worker thread that first allocates gets an arena (up to 8 per core), and each arena
  // keeps a few MB of its own: which of the many workers serve a burst decides the RSS. A few
  // shared arenas suffice (the engine thread, not malloc, is the bottleneck).
  mallopt(M_ARENA_MAX, int(std::max(2u, 2 * std::thread::hardware_concurrency())));

  generate::Engine engine(*model, tok.get(), eo);
  serve::Server server(engine, *tok, std::move(tmpl), so);
  const int port = server.bind();
  const generate::EngineStats st = engine.stats();
  write_stderr(fmt::format(
      "seek serve: listening on http://{}:{} (models: {}; {} sequences x {} positions, {} KV slots)\n",
      f.host, port,
      [&] {
        std::string s;
        for (const auto& m : so.models.models) s += (s.empty() ? "" : ", ") + m.name;
        return s;
      }(),
      st.max_seqs, st.context, st.slots));

  std::atomic<bool> served{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (served.load()) return;  // woken by the exit path below
    write_stderr("seek serve: shutting down\n");
    server.stop(f.drain);
    // run() returns once idle keep-alive connections close (up to their 5 s timeout); nothing
    // is generating any more, so do not make the user wait for them.
    for (int i = 0; i < 20 && !served.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!served.load()) std::_Exit(0);
  });
  server.run();
  served = true;
  // run() also returns if listening failed; wake the waiter so it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

}  // namespace

Command add_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model behind the DeepSeek API, with a web chat at /");
  cmd->add_option("MODEL_DIR", f->model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("--host", f->host, "Address to listen on (0.0.0.0 exposes the server)")->capture_default_str();
  cmd->add_option("--port", f->port, "Port (0: any free port, printed at start)")->capture_default_str();
  cmd->add_option("--api-key", f->api_key, "Require 'Authorization: Bearer KEY' on API routes")
      ->envname("SEEK_API_KEY");
  cmd->add_option("--name", f->name, "Model name to serve under (default: the directory name)");
  cmd->add_option("--models", f->models_file,
                  "JSON file of served names, modes (chat|reasoner) and token limits "
                  "(default: NAME, deepseek-chat, deepseek-reasoner)");
  cmd->add_option("--ctx", f->ctx, "Positions per sequence: prompt + output")->capture_default_str();
  cmd->add_option("--max-seqs", f->max_seqs, "Sequences decoded together")->capture_default_str();
  cmd->add_option("--cache-slots", f->cache_slots, "Extra KV slots keeping finished prompts for prefix reuse")
      ->capture_default_str();
  cmd->add_option("--queue", f->queue, "Requests that may wait; beyond this: HTTP 429")->capture_default_str();
  cmd->add_option("--kv-budget", f->kv_budget_gb, "KV-cache memory budget in GiB")->capture_default_str();
  cmd->add_option("--prefill-chunk", f->prefill_chunk, "Prompt tokens per sequence per step")->capture_default_str();
  cmd->add_option("--batch-tokens", f->batch_tokens, "Tokens per forward call")->capture_default_str();
  cmd->add_option("--timeout", f->timeout, "Seconds a request may take, queue included")->capture_default_str();
  cmd->add_option("--keepalive", f->keepalive, "Seconds between keep-alives while a request waits")
      ->capture_default_str();
  cmd->add_option("--drain", f->drain, "Seconds running requests get at shutdown")->capture_default_str();
  cmd->add_option("--max-body", f->max_body_mb, "Largest request body in MiB (larger: HTTP 413)")
      ->capture_default_str();
  cmd->add_option("--web-dir", f->web_dir, "Serve the chat page from this directory (development)");
  cmd->add_flag("--precise", f->precise,
                "F32 activations (slower; results independent of batching)");
  cmd->add_flag("--speculative", f->speculative,
                "Speculative decoding with the model's MTP module as the draft (per sequence, "
                "inside continuous batching; same outputs)");
  cmd->add_option("--draft-tokens", f->draft_tokens,
                  "With --speculative: drafts per step at most (chained through the MTP module; "
                  "each sequence drafts as many as pay at its acceptance rate)")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  cmd->add_flag("--content-special-tokens", f->content_special_tokens,
                "Read control-token strings in message contents as tokens (default: plain text, "
                "so a user cannot forge turns)");
  cmd->add_option("--test-script", f->test_script, "Testing only: force every chat answer to this text")
      ->group("");
  cmd->add_flag("--test-hooks", f->test_hooks,
                "Testing only: honour X-Seek-Test-Script headers, /test/engine/pause|resume")
      ->group("");
  add_load_flags(cmd, f->load);
  return {cmd, [f] { return run_serve(*f); }};
}

}  // namespace seek::cli
