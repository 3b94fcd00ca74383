#include "serve/server.h"

#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>
#include <random>
#include <sstream>

#include "core/error.h"
#include "serve/api_error.h"
#include "serve/ollama_api.h"
#include "serve/server_impl.h"
#include "serve/web_assets.h"

namespace seek::serve {

using nlohmann::json;

json parse_body(const httplib::Request& req) {
  if (req.body.empty()) bad_request("the request body is empty; expected a JSON object");
  // The JSON parser stops at a NUL byte as at the end of the input, so "{...}\0garbage" would
  // pass; no JSON text holds a raw NUL.
  if (const size_t nul = req.body.find('\0'); nul != std::string::npos)
    bad_request("the request body is not valid JSON: a NUL byte at offset {}", nul);
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) {
    try {
      j = json::parse(req.body);  // again, for the parser's message (line, column, what)
    } catch (const json::parse_error& e) {
      bad_request("the request body is not valid JSON: {}", e.what());
    }
    bad_request("the request body is not valid JSON");
  }
  return j;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

std::optional<ApiError> run_route(ServerState& s, const httplib::Request& req,
                                  const std::function<void()>& handler) {
  try {
    if (s.draining.load())
      throw ApiError(503, "the server is shutting down", "service_unavailable_error", {}, "shutting_down");
    if (req.body.size() > s.opts.max_body_bytes)
      throw ApiError(413, fmt::format("the request body exceeds {} bytes", s.opts.max_body_bytes),
                     "invalid_request_error");
    handler();
    return std::nullopt;
  } catch (const ApiError& e) {
    return e;
  } catch (const json::exception& e) {
    return ApiError(400, fmt::format("invalid request: {}", e.what()), "invalid_request_error");
  } catch (const std::bad_alloc&) {
    return ApiError(503, "out of memory", "service_unavailable_error");
  } catch (const std::exception& e) {
    return ApiError(500, e.what(), "server_error");
  }
}

std::vector<int32_t> ServerState::eos_ids() const {
  std::vector<int32_t> ids;
  for (int64_t id : engine.model().config().eos_token_ids) ids.push_back(int32_t(id));
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  return ids;
}

std::string ServerState::new_id(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), uint32_t(counter.fetch_add(1)));
}

namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool is_api_path(const std::string& p) {
  return p.rfind("/v1/", 0) == 0 || p.rfind("/beta/", 0) == 0 || p.rfind("/api/", 0) == 0 ||
         p == "/chat/completions" || p == "/completions" || p == "/models" || p == "/metrics";
}

// Errors raised before a route runs, in the shape of the API the path belongs to: Ollama's
// {"error": "..."} under /api/, DeepSeek's everywhere else.
json error_json(const std::string& path, int status, const std::string& message, const std::string& type,
                const std::string& code = {}) {
  if (path.rfind("/api/", 0) == 0) return {{"error", message}};
  return error_body(status, message, type, {}, code);
}

const char* status_message(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request body too large";
    case 414: return "Request URI too long";
    case 431: return "Request header fields too large";
    default: return "Request failed";
  }
}

}  // namespace

Server::Server(generate::Engine& engine, const tokenizer::Tokenizer& tok,
               std::optional<tokenizer::ChatTemplate> tmpl, ServerOptions opts)
    : impl_(std::make_unique<ServerState>(engine, tok, std::move(tmpl), std::move(opts))) {
  // A client that closes its socket must not kill the server: writes then fail with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  ServerState& s = *impl_;
  HttpServer& h = s.http;
  const generate::EngineStats st = engine.stats();
  // Every stream and every queued request holds a worker while it waits; a few more answer
  // /health, /metrics and the rejections (429) when all of those are busy.
  // (Each worker may keep allocator memory; more than that is waste.)
  const int spare = 4 + 2 * int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = s.opts.http_threads > 0 ? s.opts.http_threads : st.max_seqs + st.max_queue + spare;
  h.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  h.set_payload_max_length(s.opts.max_body_bytes);
  h.max_body = s.opts.max_body_bytes;
  // Only the static files may be fetched in part; an API answer is one JSON document or stream.
  h.honours_range = [](const httplib::Request& req) { return req.method == "GET" && !is_api_path(req.path); };
  h.set_read_timeout(std::chrono::milliseconds(int64_t(s.opts.read_timeout * 1000)));
  h.set_write_timeout(std::chrono::seconds(30));
  h.set_keep_alive_max_count(1000);
  // Idle keep-alive connections hold a worker and delay shutdown until they time out; clients
  // (undici, requests) read this value from the Keep-Alive header and close first.
  h.set_keep_alive_timeout(5);

  h.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    HttpConnection* conn = HttpServer::current();
    if (conn && conn->reject_status) {
      send_json(res, conn->reject_status,
                error_json(req.path, conn->reject_status, conn->reject_message, error_type_for(conn->reject_status)));
      s.metrics.request("other", conn->reject_status);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!s.opts.api_key.empty() && is_api_path(req.path)) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string_view bearer = "Bearer ";
      const bool ok = auth.rfind(bearer, 0) == 0 &&
                      constant_time_equal(std::string_view(auth).substr(bearer.size()), s.opts.api_key);
      if (!ok) {
        send_json(res, 401, error_json(req.path, 401, auth.empty()
                                                ? "Authentication Fails: no API key given (Authorization: Bearer KEY)"
                                                : "Authentication Fails: the API key is invalid",
                                       "authentication_error", "invalid_api_key"));
        s.metrics.request("auth", 401);
        if (conn) conn->close = true;  // its body, if any, is not read
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Errors httplib raises itself (unknown path, body over the limit, bad request line) get the
  // DeepSeek error shape too.
  h.set_error_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return;
    if (HttpConnection* conn = HttpServer::current(); conn && conn->body_over_limit) res.status = 413;
    const int status = res.status;
    std::string msg = status_message(status);
    if (status == 404) msg = fmt::format("Not Found: {} {}", req.method, req.path);
    if (status == 413) msg = fmt::format("the request body exceeds {} bytes", s.opts.max_body_bytes);
    send_json(res, status, error_json(req.path, status, msg, error_type_for(status)));
    s.metrics.request("other", status);
  });

  // Wraps a handler: ApiError and everything else become JSON errors.
  auto api = [&s](const std::string& endpoint, auto fn) {
    return [&s, endpoint, fn](const httplib::Request& req, httplib::Response& res) {
      const std::optional<ApiError> e = run_route(s, req, [&] { fn(req, res); });
      if (!e) return;
      s.metrics.request(endpoint, e->status);
      send_json(res, e->status, e->body());
      if (e->status == 429) res.set_header("Retry-After", "1");
    };
  };

  auto chat = api("chat_completions", [&s](const httplib::Request& q, httplib::Response& r) { handle_chat(s, q, r); });
  auto completions = api("completions", [&s](const httplib::Request& q, httplib::Response& r) {
    handle_completion(s, q, r, false);
  });
  auto fim = api("beta_completions", [&s](const httplib::Request& q, httplib::Response& r) {
    handle_completion(s, q, r, true);
  });
  for (const char* p : {"/v1/chat/completions", "/chat/completions", "/beta/chat/completions"}) h.Post(p, chat);
  for (const char* p : {"/v1/completions", "/completions"}) h.Post(p, completions);
  h.Post("/beta/completions", fim);
  add_ollama_routes(s);  // /api/chat, /api/generate, /api/tags, /api/show, /api/ps, /api/version

  auto models = [&s](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const ModelSpec& m : s.opts.models.models)
      data.push_back({{"id", m.name}, {"object", "model"}, {"owned_by", "seek"},
                      {"mode", m.reasoner() ? "reasoner" : "chat"}});
    send_json(res, 200, {{"object", "list"}, {"data", data}});
    s.metrics.request("models", 200);
  };
  h.Get("/v1/models", models);
  h.Get("/models", models);
  h.Get(R"(/v1/models/([^/]+))", [&s](const httplib::Request& req, httplib::Response& res) {
    const ModelSpec* m = s.opts.models.find(req.matches[1].str());
    if (!m) {
      send_json(res, 404, error_body(404, "Model Not Exist: " + echo_name(req.matches[1].str()),
                                     "invalid_request_error",
                                     "model", "model_not_found"));
      return;
    }
    send_json(res, 200, {{"id", m->name}, {"object", "model"}, {"owned_by", "seek"}});
  });

  h.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    const generate::EngineStats st = s.engine.stats();
    const bool draining = s.draining.load();
    send_json(res, draining ? 503 : 200,
              {{"status", draining ? "shutting_down" : "ok"},
               {"queued", st.queued}, {"active", st.active}, {"slots", st.slots},
               {"context", st.context}});
  });

  if (s.opts.test_hooks) {  // tests only (--test-hooks): hold the engine to fill its queue
    h.Post("/test/engine/pause", [&s](const httplib::Request&, httplib::Response& res) {
      s.engine.pause();
      send_json(res, 200, {{"paused", true}});
    });
    h.Post("/test/engine/resume", [&s](const httplib::Request&, httplib::Response& res) {
      s.engine.resume();
      send_json(res, 200, {{"paused", false}});
    });
  }

  h.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    const generate::EngineStats st = s.engine.stats();
    Gauges g{st.queued, st.active, st.slots, st.max_seqs, st.steps, st.batched_tokens,
             st.drafted_tokens, st.accepted_tokens};
    res.set_content(s.metrics.render(g), "text/plain; version=0.0.4");
  });

  // The chat page. Only the files in the embedded list are served (from --web-dir when given),
  // so no request path can reach anything else on disk.
  auto web = [&s](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.path == "/" ? "index.html" : req.path.substr(1);
    const WebAsset* a = find_web_asset(name);
    if (!a) {
      send_json(res, 404, error_body(404, fmt::format("Not Found: GET {}", req.path), "invalid_request_error"));
      return;
    }
    std::string body(a->body);
    if (!s.opts.web_dir.empty()) {
      std::ifstream f(s.opts.web_dir + "/" + std::string(a->path), std::ios::binary);
      if (f) body.assign(std::istreambuf_iterator<char>(f), {});
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(body, std::string(a->mime));
  };
  h.Get("/", web);
  h.Get(R"(/([A-Za-z0-9_\-]+\.(?:html|js|css|svg|ico)))", web);
}

Server::~Server() {
  impl_->http.stop();
  // Requests whose clients are gone were cancelled and leave at the engine's next step; let them
  // finish so the metrics count them. Their callbacks hold the metrics by shared ownership, so
  // a held engine (past this wait) cannot make them outlive what they touch.
  impl_->engine.wait_idle(std::chrono::seconds(30));
}

Metrics& Server::metrics() { return impl_->metrics; }

int Server::bind() {
  ServerState& s = *impl_;
  int port = s.opts.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.opts.host);
    if (port <= 0) fail("cannot bind {}: no free port", s.opts.host);
  } else if (!s.http.bind_to_port(s.opts.host, port)) {
    fail("cannot listen on {}:{} (in use, or the address is not local)", s.opts.host, port);
  }
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop(double drain_seconds) {
  ServerState& s = *impl_;
  s.draining = true;
  s.engine.stop_accepting();
  if (drain_seconds > 0)
    s.engine.wait_idle(std::chrono::milliseconds(int64_t(drain_seconds * 1000)));
  s.http.stop();
}

}  // namespace seek::serve
