// Private to src/serve: the state the route handlers share. Not installed, not for other modules.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "serve/api_error.h"
#include "serve/http.h"
#include "serve/http_server.h"
#include "serve/json_constraint.h"
#include "serve/metrics.h"
#include "serve/prompt.h"
#include "serve/server.h"

namespace seek::serve {

struct ServerState {
  ServerState(generate::Engine& e, const tokenizer::Tokenizer& t, std::optional<tokenizer::ChatTemplate> tmpl,
       ServerOptions o)
      : engine(e), tok(t), prompts(t, std::move(tmpl), o.literal_content), opts(std::move(o)) {}

  generate::Engine& engine;
  const tokenizer::Tokenizer& tok;
  PromptBuilder prompts;
  ServerOptions opts;
  // Shared with the engine-thread callbacks of in-flight requests (latency histograms), which
  // may run once more after the server is gone when the engine is held past its shutdown wait.
  std::shared_ptr<Metrics> metrics_ptr = std::make_shared<Metrics>();
  Metrics& metrics = *metrics_ptr;
  HttpServer http;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> counter{0};

  // Token bytes for JSON-constrained decoding, built on first use (129k strings).
  std::shared_ptr<const TokenBytes> token_bytes() {
    std::call_once(bytes_once_, [&] { bytes_ = TokenBytes::build(tok, engine.model().config().vocab_size); });
    return bytes_;
  }
  std::vector<int32_t> eos_ids() const;
  // "chatcmpl-<24 hex>": unique per process and hard to guess across restarts.
  std::string new_id(const char* prefix);

 private:
  std::once_flag bytes_once_;
  std::shared_ptr<const TokenBytes> bytes_;
};

// Route handlers (chat_api.cpp, completions_api.cpp). They throw ApiError; the router turns it
// into the JSON error response.
void handle_chat(ServerState& s, const httplib::Request& req, httplib::Response& res);
void handle_completion(ServerState& s, const httplib::Request& req, httplib::Response& res, bool fim);

// The request body as JSON: 400 when it does not parse.
nlohmann::json parse_body(const httplib::Request& req);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);

// What every API route (DeepSeek's and Ollama's) does around its handler: 503 while the server
// drains, 413 for a body over the limit (the connection cut a chunked body off near it; this is
// the exact check), then `handler`. Returns the error to answer with, each API in its own shape:
// an ApiError as thrown, a JSON error as 400, out of memory as 503, anything else as 500.
std::optional<ApiError> run_route(ServerState& s, const httplib::Request& req,
                                  const std::function<void()>& handler);

}  // namespace seek::serve
