// Runs one generation for an HTTP request and answers it, streaming or not. What differs
// between endpoints (chat vs completions chunk shapes, tool calls, logprobs) is an Output;
// what is common lives here: submitting to the engine (429 when the queue is full, 503 when
// stopping), the deadline, keep-alives while queued (": keep-alive" SSE comments, or blank lines
// before a non-streaming JSON body, as DeepSeek sends), noticing a client that went away
// (its sequence is cancelled at once), in-stream errors, usage and metrics.
#pragma once
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "serve/api_error.h"
#include "serve/channel.h"
#include "serve/server_impl.h"

namespace seek::serve {

class Output {
 public:
  virtual ~Output() = default;
  virtual bool wants_tokens() const { return false; }
  // Streaming chunks before any text (the chat role delta).
  virtual void start(std::vector<nlohmann::json>& chunks) {}
  // A Text or Token event: streaming chunks to send now (non-streaming: ignored).
  virtual void event(const Event& e, std::vector<nlohmann::json>& chunks) = 0;
  // The end: final streaming chunks (finish_reason).
  virtual void finish(const generate::EngineResult& r, std::vector<nlohmann::json>& chunks) = 0;
  // The non-streaming body.
  virtual nlohmann::json response(const generate::EngineResult& r) = 0;
  // A chunk with id/object/created/model and no choices (for the usage chunk).
  virtual nlohmann::json chunk_base() const = 0;
  // Streams as NDJSON (one object a line, no [DONE]; the Ollama API) instead of SSE.
  virtual bool ndjson() const { return false; }
  // An error as this API reports it (DeepSeek: {"error": {"message", "type", ...}}).
  virtual nlohmann::json error_json(const ApiError& e) const { return e.body(); }
};

// The engine request every endpoint starts from: the prompt and the shared sampling settings
// (a fresh seed per request when the body fixes none).
generate::EngineRequest engine_request(ServerState& s, const SamplingFields& f,
                                       std::vector<int32_t> prompt);

nlohmann::json usage_json(const generate::EngineResult& r);

// Tests: the answer a random-weight model is forced to give (the X-Seek-Test-Script header
// under --test-hooks, else `fallback`); empty: none. 400 for a header that is not a JSON string.
std::string test_script(const ServerState& s, const httplib::Request& req, const std::string& fallback);

// The engine request of a chat: prompt, sampling, thinking split and the output constraint
// (forced tool call, JSON object, or the test script).
generate::EngineRequest chat_engine_request(ServerState& s, const httplib::Request& req, const ChatRequest& r,
                                            const BuiltPrompt& p);

void respond(ServerState& s, httplib::Response& res, const std::string& endpoint,
             generate::EngineRequest er, std::shared_ptr<Output> out, bool stream,
             bool include_usage);

}  // namespace seek::serve
