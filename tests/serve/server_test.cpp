// The HTTP API end to end on loopback: DeepSeek's response shapes (reasoning_content, usage,
// SSE order), its error shapes and status codes, auth, limits, and the engine behaviours a
// client can observe (queue bound, disconnects, deadlines, prefix cache).
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "serve/metrics.h"
#include "test_server.h"

namespace seek::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json chat_body(const std::string& model, bool stream = false) {
  return {{"model", model},
          {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi!"}}}},
          {"stream", stream}};
}

json post_json(const TestServer& srv, const std::string& path, const json& body, int expect,
               httplib::Headers headers = {}) {
  auto c = srv.client();
  auto res = c.Post(path, headers, body.dump(), "application/json");
  EXPECT_TRUE(res) << "no response";
  if (!res) return {};
  EXPECT_EQ(res->status, expect) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  // Non-streaming answers may be led by keep-alive blank lines.
  return json::parse(res->body);
}

void expect_error(const json& j, const std::string& param = {}) {
  ASSERT_TRUE(j.contains("error")) << j.dump();
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_FALSE(e["message"].get<std::string>().empty());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << j.dump();
    EXPECT_NE(e["message"].get<std::string>().find(param), std::string::npos) << j.dump();
  }
}

// The reasoner's prompt already ends with "<think>\n": the model writes the rest.
const char* kThinking = "Let me think: 2 + 2.\n</think>\n\nIt is 4.";

TEST(Server, HealthAndModels) {
  TestServer srv;
  auto c = srv.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  const json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  std::vector<std::string> ids;
  for (const json& d : j["data"]) ids.push_back(d["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"tiny", "deepseek-chat", "deepseek-reasoner"}));
}

TEST(Server, ReasonerNonStreaming) {
  TestServer srv;
  const json j = post_json(srv, "/v1/chat/completions", chat_body("deepseek-reasoner"), 200, script(kThinking));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "deepseek-reasoner");
  EXPECT_TRUE(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  const json& ch = j["choices"][0];
  EXPECT_EQ(ch["message"]["role"], "assistant");
  EXPECT_EQ(ch["message"]["reasoning_content"], "Let me think: 2 + 2.");
  EXPECT_EQ(ch["message"]["content"], "It is 4.");
  EXPECT_EQ(ch["finish_reason"], "stop");
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 5);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_EQ(u["prompt_cache_hit_tokens"].get<int>() + u["prompt_cache_miss_tokens"].get<int>(),
            u["prompt_tokens"].get<int>());
  const int reasoning = u["completion_tokens_details"]["reasoning_tokens"];
  EXPECT_GT(reasoning, 0);
  EXPECT_LT(reasoning, u["completion_tokens"].get<int>());
}

TEST(Server, ReasonerStreamingOrder) {
  TestServer srv;
  json body = chat_body("deepseek-reasoner", true);
  body["stream_options"] = {{"include_usage", true}};
  const SseStream s = post_stream(srv.client(), "/v1/chat/completions", body, script(kThinking));
  ASSERT_EQ(s.status, 200);
  ASSERT_TRUE(s.done);
  ASSERT_GE(s.events.size(), 4u);
  // First delta: the role. Then reasoning pieces, then content pieces, then the finish, then
  // one usage chunk with no choices.
  EXPECT_EQ(s.events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string reasoning, content;
  bool content_started = false;
  std::string finish;
  for (size_t i = 0; i + 1 < s.events.size(); ++i) {
    const json& e = s.events[i];
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], s.events[0]["id"]);
    const json& d = e["choices"][0]["delta"];
    if (d.contains("reasoning_content") && d["reasoning_content"].is_string()) {
      EXPECT_FALSE(content_started) << "reasoning after content";
      reasoning += d["reasoning_content"].get<std::string>();
    }
    if (d.contains("content") && d["content"].is_string() && !d["content"].get<std::string>().empty()) {
      content_started = true;
      content += d["content"].get<std::string>();
    }
    if (e["choices"][0]["finish_reason"].is_string()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(reasoning, "Let me think: 2 + 2.");
  EXPECT_EQ(content, "It is 4.");
  EXPECT_EQ(finish, "stop");
  const json& last = s.events.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_GT(last["usage"]["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);
}

TEST(Server, ChatModelHasNoReasoning) {
  TestServer srv;
  const json j = post_json(srv, "/v1/chat/completions", chat_body("deepseek-chat"), 200, script("Hello there!"));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello there!");
  EXPECT_FALSE(j["choices"][0]["message"].contains("reasoning_content"));
  EXPECT_EQ(j["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
  // Streaming: no reasoning_content keys at all.
  const SseStream s = post_stream(srv.client(), "/v1/chat/completions", chat_body("deepseek-chat", true),
                                  script("Hello there!"));
  std::string content;
  for (const json& e : s.events) {
    EXPECT_FALSE(e["choices"][0]["delta"].contains("reasoning_content"));
    if (e["choices"][0]["delta"].contains("content")) content += e["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, "Hello there!");
  EXPECT_TRUE(s.done);
}

TEST(Server, StopStringsAndMaxTokens) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["stop"] = json::array({"wor", "xyz"});
  json j = post_json(srv, "/v1/chat/completions", body, 200, script("Hello world!"));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello ");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  body = chat_body("deepseek-chat");
  body["max_tokens"] = 3;
  j = post_json(srv, "/v1/chat/completions", body, 200);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
}

TEST(Server, PrefixCompletionContinuesTheAssistant) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["messages"].push_back({{"role", "assistant"}, {"content", "```python\n"}, {"prefix", true}});
  const json j = post_json(srv, "/beta/chat/completions", body, 200, script("print(1)\n```"));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "print(1)\n```");
}

TEST(Server, PromptCacheHitsOnARepeatedPrefix) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["max_tokens"] = 2;
  const json a = post_json(srv, "/v1/chat/completions", body, 200);
  EXPECT_EQ(a["usage"]["prompt_cache_hit_tokens"], 0);
  const json b = post_json(srv, "/v1/chat/completions", body, 200);
  EXPECT_EQ(b["usage"]["prompt_cache_hit_tokens"].get<int>(), b["usage"]["prompt_tokens"].get<int>() - 1);
  EXPECT_EQ(b["usage"]["prompt_cache_miss_tokens"], 1);
}

TEST(Server, MalformedRequests) {
  TestServer srv;
  auto c = srv.client();
  auto bad = c.Post("/v1/chat/completions", "{\"model\": ", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  expect_error(json::parse(bad->body));
  auto empty = c.Post("/v1/chat/completions", "", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  expect_error(post_json(srv, "/v1/chat/completions", json::array({1, 2}), 400));

  struct Case {
    const char* field;
    json value;
    const char* param;
  };
  const std::vector<Case> cases = {
      {"max_tokens", -1, "max_tokens"},
      {"max_tokens", 0, "max_tokens"},
      {"max_tokens", 8193, "max_tokens"},
      {"max_tokens", "100", "max_tokens"},
      {"max_tokens", 10.5, "max_tokens"},
      {"temperature", 2.5, "temperature"},
      {"temperature", "hot", "temperature"},
      {"top_p", 0, "top_p"},
      {"frequency_penalty", -3, "frequency_penalty"},
      {"presence_penalty", 2.1, "presence_penalty"},
      {"stop", json::array({1}), "stop"},
      {"stop", json(std::vector<std::string>(17, "x")), "stop"},
      {"stream", "yes", "stream"},
      {"top_logprobs", 5, "top_logprobs"},  // without logprobs
      {"response_format", {{"type", "xml"}}, "response_format"},
      {"messages", "hi", "messages"},
      {"messages", json::array(), "messages"},
      {"tools", json::array({{{"type", "function"}, {"function", {{"name", "bad name!"}}}}}), "tools[0].function.name"},
  };
  for (const Case& k : cases) {
    json body = chat_body("deepseek-chat");
    body[k.field] = k.value;
    SCOPED_TRACE(std::string(k.field) + " = " + k.value.dump());
    expect_error(post_json(srv, "/v1/chat/completions", body, 422), k.param);
  }
  json no_model = chat_body("deepseek-chat");
  no_model.erase("model");
  expect_error(post_json(srv, "/v1/chat/completions", no_model, 422), "model");
  json bad_role = chat_body("deepseek-chat");
  bad_role["messages"][1]["role"] = "wizard";
  expect_error(post_json(srv, "/v1/chat/completions", bad_role, 422), "messages[1].role");

  // Unknown fields are ignored.
  json extra = chat_body("deepseek-chat");
  extra["max_tokens"] = 2;
  extra["frobnicate"] = {{"a", 1}};
  post_json(srv, "/v1/chat/completions", extra, 200);
}

TEST(Server, DeepSeekSpecificRejections) {
  TestServer srv;
  // reasoning_content sent back → 400.
  json body = chat_body("deepseek-reasoner");
  body["messages"].push_back({{"role", "assistant"}, {"content", "4"}, {"reasoning_content", "2+2"}});
  body["messages"].push_back({{"role", "user"}, {"content", "and 3+3?"}});
  expect_error(post_json(srv, "/v1/chat/completions", body, 400));
  // The reasoner rejects logprobs and ignores temperature.
  json lp = chat_body("deepseek-reasoner");
  lp["logprobs"] = true;
  expect_error(post_json(srv, "/v1/chat/completions", lp, 400));
  json temp = chat_body("deepseek-reasoner");
  temp["temperature"] = 1.7;
  temp["presence_penalty"] = 1.0;
  post_json(srv, "/v1/chat/completions", temp, 200, script(kThinking));
  // Unknown model → 404, unknown path → 404, both in the error shape.
  expect_error(post_json(srv, "/v1/chat/completions", chat_body("gpt-4"), 404), "model");
  auto c = srv.client();
  auto nf = c.Get("/v1/nothing-here");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  expect_error(json::parse(nf->body));
}

TEST(Server, BodyAndHeaderLimits) {
  serve::ServerOptions so = TestServer::defaults();
  so.max_body_bytes = 4096;
  TestServer srv(so);
  auto c = srv.client();
  json body = chat_body("deepseek-chat");
  body["messages"][1]["content"] = std::string(10000, 'a');
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  expect_error(json::parse(res->body));
  // A header past httplib's 8 KiB line limit is refused, and the server keeps serving.
  httplib::Headers big = {{"X-Big", std::string(20000, 'b')}};
  auto r2 = c.Get("/health", big);
  if (r2) {
    EXPECT_GE(r2->status, 400);
  }
  auto ok = srv.client().Get("/health");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(Server, ApiKey) {
  serve::ServerOptions so = TestServer::defaults();
  so.api_key = "sk-test-123";
  TestServer srv(so);
  json body = chat_body("deepseek-chat");
  body["max_tokens"] = 1;
  expect_error(post_json(srv, "/v1/chat/completions", body, 401));
  expect_error(post_json(srv, "/v1/chat/completions", body, 401, {{"Authorization", "Bearer sk-wrong"}}));
  post_json(srv, "/v1/chat/completions", body, 200, {{"Authorization", "Bearer sk-test-123"}});
  auto c = srv.client();
  auto health = c.Get("/health");  // open: load balancers probe it
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
}

TEST(Server, ToolCalls) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["tools"] = json::array({{{"type", "function"},
                                {"function", {{"name", "get_weather"},
                                              {"description", "Weather of a city"},
                                              {"parameters", {{"type", "object"},
                                                              {"properties", {{"city", {{"type", "string"}}}}}}}}}}});
  const std::string call =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  json j = post_json(srv, "/v1/chat/completions", body, 200, script(call));
  const json& ch = j["choices"][0];
  EXPECT_EQ(ch["finish_reason"], "tool_calls");
  ASSERT_EQ(ch["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(ch["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(ch["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(ch["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>()),
            json({{"city", "Paris"}}));

  // Streaming: the call block never leaks into content; one tool_calls delta.
  body["stream"] = true;
  const SseStream s = post_stream(srv.client(), "/v1/chat/completions", body, script("Let me check." + call));
  std::string content;
  int calls = 0;
  std::string finish;
  for (const json& e : s.events) {
    const json& d = e["choices"][0]["delta"];
    if (d.contains("content") && d["content"].is_string()) content += d["content"].get<std::string>();
    if (d.contains("tool_calls")) calls += int(d["tool_calls"].size());
    if (e["choices"][0]["finish_reason"].is_string()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(content, "Let me check.");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(finish, "tool_calls");

  // The tool's answer goes back in and is accepted.
  json back = chat_body("deepseek-chat");
  back["tools"] = body["tools"];
  back["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", ch["message"]["tool_calls"]}});
  back["messages"].push_back({{"role", "tool"}, {"tool_call_id", ch["message"]["tool_calls"][0]["id"]}, {"content", "18C"}});
  j = post_json(srv, "/v1/chat/completions", back, 200, script("It is 18C in Paris."));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "It is 18C in Paris.");

  // tool_choice names a function: the call is forced.
  json forced = chat_body("deepseek-chat");
  forced["tools"] = body["tools"];
  forced["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  forced["max_tokens"] = 30;
  j = post_json(srv, "/v1/chat/completions", forced, 200);
  ASSERT_TRUE(j["choices"][0]["message"].contains("tool_calls")) << j.dump();
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
}

TEST(Server, JsonObjectOutputIsJson) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["response_format"] = {{"type", "json_object"}};
  body["max_tokens"] = 200;
  body["temperature"] = 0;
  const json j = post_json(srv, "/v1/chat/completions", body, 200);
  const std::string content = j["choices"][0]["message"]["content"];
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content[0], '{');
  if (j["choices"][0]["finish_reason"] == "stop") {
    const json parsed = json::parse(content, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << content;
    EXPECT_TRUE(parsed.is_object()) << content;
  }
}

TEST(Server, Logprobs) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  body["max_tokens"] = 4;
  const json j = post_json(srv, "/v1/chat/completions", body, 200);
  const json& lp = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 4u);
  for (const json& e : lp) {
    EXPECT_TRUE(e["token"].is_string());
    EXPECT_LE(e["logprob"].get<double>(), 0.0);
    EXPECT_EQ(e["top_logprobs"].size(), 3u);
    EXPECT_TRUE(e["bytes"].is_array());
  }
}

TEST(Server, FimAndPlainCompletions) {
  TestServer srv;
  json fim = {{"model", "deepseek-chat"}, {"prompt", "def add(a, b):\n"}, {"suffix", "\n    return c\n"}, {"max_tokens", 20}};
  json j = post_json(srv, "/beta/completions", fim, 200, script("    c = a + b"));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "    c = a + b");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 10);
  json plain = {{"model", "tiny"}, {"prompt", "Once upon"}, {"max_tokens", 3}};
  j = post_json(srv, "/v1/completions", plain, 200);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  // A suffix outside the beta endpoint is refused, naming it.
  expect_error(post_json(srv, "/v1/completions", fim, 422), "suffix");
  plain["stream"] = true;
  const SseStream s = post_stream(srv.client(), "/v1/completions", plain);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.events.front()["object"], "text_completion");
}

TEST(Server, QueueFullAnswers429AndKeepAlivesWhileQueued) {
  generate::EngineOptions eo = TestServer::engine_defaults();
  eo.max_seqs = 1;
  eo.cache_slots = 0;
  eo.max_queue = 2;
  TestServer srv(TestServer::defaults(), eo);
  // The engine is held while the queue fills: nothing leaves it until resume().
  srv.engine().pause();
  // The first is a long stream whose client leaves once it runs; the second waits behind it
  // and receives keep-alive comments meanwhile.
  json longer = chat_body("deepseek-chat", true);
  longer["max_tokens"] = 8192;
  std::atomic<bool> stop_first{false};
  std::thread first([&] {
    httplib::Client c("127.0.0.1", srv.port());
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = longer.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return !stop_first.load(); };
    c.send(req);
  });
  std::promise<void> kept_alive;
  SseStream queued;
  std::thread second([&] {
    json b = chat_body("deepseek-chat", true);
    b["max_tokens"] = 2;
    httplib::Client c("127.0.0.1", srv.port());
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = b.dump();
    req.set_header("Content-Type", "application/json");
    bool told = false;
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      queued.raw.append(d, n);
      if (!told && queued.raw.find(": keep-alive") != std::string::npos) {
        told = true;
        kept_alive.set_value();
      }
      return true;
    };
    auto res = c.send(req);
    if (res) queued.status = res->status;
    if (!told) kept_alive.set_value();
  });
  // Both are queued once their handlers run; the engine cannot take them meanwhile, so the
  // count only grows (bounded, should a request fail instead).
  for (int i = 0; i < 6000 && srv.engine().stats().queued < 2; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(srv.engine().stats().queued, 2);
  // The third finds the queue full.
  const json j = post_json(srv, "/v1/chat/completions", chat_body("deepseek-chat"), 429);
  expect_error(j);
  ASSERT_EQ(kept_alive.get_future().wait_for(30s), std::future_status::ready);
  srv.engine().resume();
  stop_first = true;  // the first client goes away: its slot frees, the queued one runs
  first.join();
  second.join();
  parse_sse(queued);
  EXPECT_TRUE(queued.done);
  EXPECT_FALSE(queued.comments.empty());
  EXPECT_TRUE(srv.engine().wait_idle(5s));
}

TEST(Server, DisconnectFreesTheSlotAtOnce) {
  TestServer srv;
  json body = chat_body("deepseek-chat", true);
  body["max_tokens"] = 8192;
  httplib::Client c("127.0.0.1", srv.port());
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 5; };
  c.send(req);
  EXPECT_TRUE(srv.engine().wait_idle(5s)) << "the sequence kept running after the client left";
  EXPECT_EQ(srv.engine().stats().active, 0);
}

TEST(Server, DeadlineEndsWithAnError) {
  serve::ServerOptions so = TestServer::defaults();
  so.request_timeout = 0.3;
  // A non-streaming answer keeps its status code only while events come within one keep-alive
  // interval (then it switches to a 200 body led by blank lines); on a loaded machine a step can
  // take longer than the tests' 0.2 s, so here the interval is far beyond the deadline.
  so.keepalive_interval = 30;
  // Neither the context nor EOS may end the request first: with the default 1024-token context
  // a fast run finished by length inside 0.3 s, and a sampled EOS could stop it.
  generate::EngineOptions eo = TestServer::engine_defaults();
  eo.context = 8192 + 64;
  eo.max_seqs = 2;
  TestServer srv(so, eo);
  json body = chat_body("deepseek-chat");
  body["max_tokens"] = 8192;
  body["temperature"] = 0;
  expect_error(post_json(srv, "/v1/chat/completions", body, 503));
  body["stream"] = true;
  const SseStream s = post_stream(srv.client(), "/v1/chat/completions", body);
  ASSERT_FALSE(s.events.empty());
  EXPECT_TRUE(s.events.back().contains("error")) << s.events.back().dump();
  EXPECT_TRUE(s.done);
}

TEST(Server, MetricsAndWebPage) {
  TestServer srv;
  json body = chat_body("deepseek-chat");
  body["max_tokens"] = 3;
  post_json(srv, "/v1/chat/completions", body, 200);
  auto c = srv.client();
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  for (const char* want : {"seek_requests_total{endpoint=\"chat_completions\",status=\"200\"} 1",
                           "seek_completion_tokens_total 3", "seek_queue_depth",
                           "seek_time_to_first_token_seconds_bucket", "seek_inter_token_latency_seconds_count 2"})
    EXPECT_NE(m->body.find(want), std::string::npos) << want << "\n" << m->body;

  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  for (const char* evil : {"/../CMakeLists.txt", "/..%2f..%2fetc%2fpasswd", "/%2e%2e/etc/passwd", "/etc/passwd",
                           "/web/index.html"}) {
    auto r = c.Get(evil);
    if (r) {
      EXPECT_EQ(r->status, 404) << evil;
    }
  }
}

}  // namespace
}  // namespace seek::test
