// A live `seek serve` inside the test process: engine + HTTP server on a free loopback port,
// with an httplib client and SSE helpers.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "generate/engine.h"
#include "serve/http.h"
#include "serve/server.h"
#include "generate/test_model.h"
#include "tokenizer/chat_template.h"

namespace seek::test {

class TestServer {
 public:
  explicit TestServer(serve::ServerOptions so = defaults(), generate::EngineOptions eo = engine_defaults()) {
    engine_ = std::make_unique<generate::Engine>(test_model(), &test_tokenizer(), eo);
    so.port = 0;
    if (so.models.models.empty()) so.models = serve::ModelRegistry::defaults("tiny");
    server_ = std::make_unique<serve::Server>(*engine_, test_tokenizer(),
                                              tokenizer::ChatTemplate::load(test_model_dir()), so);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TestServer() {
    server_->stop();
    thread_.join();
    server_.reset();
    engine_.reset();
  }

  static serve::ServerOptions defaults() {
    serve::ServerOptions so;
    so.test_hooks = true;
    so.keepalive_interval = 0.2;
    return so;
  }
  static generate::EngineOptions engine_defaults() {
    generate::EngineOptions eo;
    eo.context = 1024;
    eo.max_seqs = 8;
    eo.max_queue = 16;
    return eo;
  }

  int port() const { return port_; }
  generate::Engine& engine() { return *engine_; }
  serve::Server& server() { return *server_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(60));
    return c;
  }

 private:
  std::unique_ptr<generate::Engine> engine_;
  std::unique_ptr<serve::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

// A JSON string header value forcing the model's output.
inline httplib::Headers script(const std::string& text) {
  return {{"X-Seek-Test-Script", nlohmann::json(text).dump()}};
}

struct SseStream {
  int status = 0;
  std::vector<std::string> comments;   // ": keep-alive" lines
  std::vector<nlohmann::json> events;  // parsed data: lines
  bool done = false;                   // saw data: [DONE]
  std::string raw;
};

// Parses a complete SSE body.
inline void parse_sse(SseStream& s) {
  size_t pos = 0;
  while (pos < s.raw.size()) {
    size_t end = s.raw.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string block = s.raw.substr(pos, end - pos);
    pos = end + 2;
    if (block.rfind(":", 0) == 0) {
      s.comments.push_back(block);
    } else if (block.rfind("data: ", 0) == 0) {
      const std::string data = block.substr(6);
      if (data == "[DONE]") s.done = true;
      else s.events.push_back(nlohmann::json::parse(data));
    } else {
      ADD_FAILURE() << "unexpected SSE block: " << block;
    }
  }
}

// POSTs and collects the whole stream.
inline SseStream post_stream(const httplib::Client& cc, const std::string& path, const nlohmann::json& body,
                             httplib::Headers headers = {}) {
  httplib::Client& c = const_cast<httplib::Client&>(cc);
  SseStream s;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = std::move(headers);
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    s.raw.append(d, n);
    return true;
  };
  auto res = c.send(req);
  if (res) s.status = res->status;
  parse_sse(s);
  return s;
}

}  // namespace seek::test
