// `seek serve`: the DeepSeek API (chat completions with reasoning_content, FIM and plain
// completions, models, health, Prometheus metrics) and the web chat, over one shared
// continuous-batching Engine. Every request is validated and answered in DeepSeek's JSON error
// shape; generation runs on the engine thread and reaches the client through a Channel.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "generate/engine.h"
#include "serve/models.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::serve {

class Metrics;
struct ServerState;  // server_impl.h

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless exposed on purpose
  int port = 8000;                 // 0: any free port (bind() returns it)
  std::string api_key;             // non-empty: API routes need "Authorization: Bearer KEY"
  size_t max_body_bytes = 8u << 20;
  int http_threads = 0;            // 0: enough for max_seqs + max_queue streams, plus spare
  double request_timeout = 600.0;  // seconds from arrival to the end of generation
  double keepalive_interval = 5.0;  // seconds between keep-alives while nothing else is sent
  double read_timeout = 10.0;       // seconds a client may take to send its request
  std::string web_dir;             // serve the chat page from here, not the compiled-in copy
  // Message contents are plain text: control-token strings in them ("<｜Assistant｜>") are not
  // the template's markers, so a user cannot forge turns. False: they are parsed as tokens.
  bool literal_content = true;
  ModelRegistry models;
  // Testing random-weight models: force every chat answer to `test_script` (then EOS), and with
  // `test_hooks` honour a per-request "X-Seek-Test-Script: <JSON string>" header and serve
  // POST /test/engine/pause and /test/engine/resume (hold the engine so tests can fill its
  // queue deterministically). Never for real serving.
  std::string test_script;
  bool test_hooks = false;
};

class Server {
 public:
  // `engine`, `tok` and `tmpl` must outlive the server.
  Server(generate::Engine& engine, const tokenizer::Tokenizer& tok,
         std::optional<tokenizer::ChatTemplate> tmpl, ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port; returns the port. Throws seek::Error if the address is taken.
  int bind();
  // Serves until stop(); call after bind().
  void run();
  // Stops accepting requests (new ones get 503), lets running ones finish for up to
  // `drain_seconds`, then closes the listener. Safe from any thread.
  void stop(double drain_seconds = 0.0);

  Metrics& metrics();

 private:
  std::unique_ptr<ServerState> impl_;
};

}  // namespace seek::serve
