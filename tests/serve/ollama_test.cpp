// The Ollama API (/api/*) end to end on loopback: its response fields, NDJSON framing (and the
// keep-alive that leads a line), thinking apart from the content, options, format, tools,
// generate's context, the model routes, and its error shape ({"error": "..."}, 400/404/413).
#include <gtest/gtest.h>

#include <ctime>
#include <regex>

#include "test_server.h"

namespace seek::test {
namespace {

using nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

json chat(const std::string& model, bool stream = false) {
  return {{"model", model}, {"messages", user("What is 2 + 2?")}, {"stream", stream}};
}

struct Reply {
  int status = 0;
  std::string content_type;
  std::string raw;
  json body;  // non-streaming: the object; streaming: the array of lines
};

Reply post(const TestServer& srv, const std::string& path, const json& body, httplib::Headers headers = {},
           std::function<void(const std::string&)> on_data = {}) {
  httplib::Client c = srv.client();
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = std::move(headers);
  req.body = body.is_string() ? body.get<std::string>() : body.dump();
  req.set_header("Content-Type", "application/json");
  Reply r;
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    r.raw.append(d, n);
    if (on_data) on_data(r.raw);
    return true;
  };
  auto res = c.send(req);
  EXPECT_TRUE(res) << "no response";
  if (!res) return r;
  r.status = res->status;
  r.content_type = res->get_header_value("Content-Type");
  if (r.content_type == "application/x-ndjson") {
    // One JSON object a line; a keep-alive is whitespace leading a line.
    EXPECT_TRUE(!r.raw.empty() && r.raw.back() == '\n') << r.raw;
    r.body = json::array();
    size_t at = 0;
    for (size_t nl; (nl = r.raw.find('\n', at)) != std::string::npos; at = nl + 1)
      r.body.push_back(json::parse(r.raw.substr(at, nl - at)));
  } else {
    r.body = json::parse(r.raw);
  }
  return r;
}

void expect_error(const Reply& r, int status, const std::string& has = {}) {
  EXPECT_EQ(r.status, status) << r.raw;
  EXPECT_EQ(r.content_type, "application/json");
  ASSERT_TRUE(r.body.is_object() && r.body.size() == 1 && r.body["error"].is_string()) << r.raw;
  EXPECT_NE(r.body["error"].get<std::string>().find(has), std::string::npos) << r.raw;
}

// The closing object of a chat or generate answer.
void expect_done(const json& j, const std::string& model, const std::string& reason) {
  EXPECT_EQ(j["model"], model);
  EXPECT_TRUE(std::regex_match(j["created_at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")))
      << j["created_at"];
  EXPECT_EQ(j["done"], true);
  EXPECT_EQ(j["done_reason"], reason);
  for (const char* k : {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                        "eval_count", "eval_duration"})
    EXPECT_TRUE(j[k].is_number_integer() && j[k].get<int64_t>() >= 0) << k << ": " << j.dump();
  EXPECT_GT(j["prompt_eval_count"].get<int>(), 3);
  EXPECT_GT(j["eval_count"].get<int>(), 0);
  EXPECT_GE(j["total_duration"].get<int64_t>(), j["eval_duration"].get<int64_t>());
}

const char* kThinking = "Two plus two.\n</think>\n\nIt is 4.";
const std::string kCall =
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
    "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

TEST(Ollama, ChatStreamsNdjsonWithThinkingApart) {
  TestServer srv;
  const Reply r = post(srv, "/api/chat", chat("deepseek-reasoner", true), script(kThinking));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  ASSERT_GE(r.body.size(), 3u);
  std::string thinking, content;
  for (size_t i = 0; i + 1 < r.body.size(); ++i) {
    const json& j = r.body[i];
    EXPECT_EQ(j["done"], false);
    EXPECT_EQ(j["model"], "deepseek-reasoner");
    EXPECT_EQ(j["message"]["role"], "assistant");
    if (j["message"].contains("thinking")) {
      EXPECT_TRUE(content.empty()) << "thinking after content";
      EXPECT_EQ(j["message"]["content"], "");
      thinking += j["message"]["thinking"].get<std::string>();
    }
    content += j["message"]["content"].get<std::string>();
  }
  EXPECT_EQ(thinking, "Two plus two.");
  EXPECT_EQ(content, "It is 4.");
  expect_done(r.body.back(), "deepseek-reasoner", "stop");
  EXPECT_EQ(r.body.back()["message"]["content"], "");
  EXPECT_EQ(r.raw.find("[DONE]"), std::string::npos);
}

TEST(Ollama, ChatNonStreamingAndThink) {
  TestServer srv;
  // Ollama streams unless told not to.
  json body = chat("deepseek-reasoner");
  body.erase("stream");
  EXPECT_EQ(post(srv, "/api/chat", body, script(kThinking)).content_type, "application/x-ndjson");

  Reply r = post(srv, "/api/chat", chat("deepseek-reasoner"), script(kThinking));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["message"]["thinking"], "Two plus two.");
  EXPECT_EQ(r.body["message"]["content"], "It is 4.");
  expect_done(r.body, "deepseek-reasoner", "stop");

  // think false: the reasoner answers at once, without a thinking field.
  body = chat("deepseek-reasoner");
  body["think"] = false;
  r = post(srv, "/api/chat", body, script("Four."));
  EXPECT_EQ(r.body["message"]["content"], "Four.");
  EXPECT_FALSE(r.body["message"].contains("thinking")) << r.raw;

  // A chat-mode model: no thinking unless asked, and asking is an error.
  r = post(srv, "/api/chat", chat("deepseek-chat"), script("Four."));
  EXPECT_EQ(r.body["message"]["content"], "Four.");
  EXPECT_FALSE(r.body["message"].contains("thinking"));
  body = chat("deepseek-chat");
  body["think"] = true;
  expect_error(post(srv, "/api/chat", body), 400, "\"deepseek-chat\" does not support thinking");

  // The default tag names the same model; nothing to generate loads it.
  r = post(srv, "/api/chat", chat("deepseek-chat:latest"), script("Four."));
  EXPECT_EQ(r.body["model"], "deepseek-chat:latest");
  // A message without content reads as empty, as Ollama's Go structs do.
  body = {{"model", "deepseek-chat"}, {"stream", false}, {"messages", json::array({{{"role", "user"}}})}};
  r = post(srv, "/api/chat", body, script("Hm?"));
  EXPECT_EQ(r.body["message"]["content"], "Hm?") << r.raw;
  r = post(srv, "/api/chat", {{"model", "deepseek-chat"}, {"messages", json::array()}});
  EXPECT_EQ(r.body["done_reason"], "load");
  r = post(srv, "/api/generate", {{"model", "deepseek-chat"}, {"keep_alive", 0}});
  EXPECT_EQ(r.body["done_reason"], "unload");
}

TEST(Ollama, KeepAliveLeadsALine) {
  TestServer srv;
  srv.engine().pause();  // held until the client has received something: a keep-alive
  bool resumed = false;
  const Reply r = post(srv, "/api/chat", chat("deepseek-chat", true), script("Hi."), [&](const std::string&) {
    if (!resumed) srv.engine().resume();
    resumed = true;
  });
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.raw[0], ' ') << r.raw;
  EXPECT_EQ(r.raw.find("\n\n"), std::string::npos) << "no blank lines";
  EXPECT_EQ(r.body.back()["done"], true);
}

TEST(Ollama, Generate) {
  TestServer srv;
  json body = {{"model", "deepseek-chat"}, {"prompt", "2 + 2?"}, {"system", "Be brief."}, {"stream", false}};
  Reply r = post(srv, "/api/generate", body, script("Four."));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["response"], "Four.");
  EXPECT_FALSE(r.body.contains("message"));
  expect_done(r.body, "deepseek-chat", "stop");
  // context: the prompt and the answer as token ids (the answer's last tokens), fed back.
  const std::vector<int32_t> ctx = r.body["context"];
  const std::vector<int32_t> four = test_tokenizer().encode("Four.", false);
  ASSERT_GT(ctx.size(), four.size());
  EXPECT_TRUE(std::equal(four.begin(), four.end(), ctx.end() - long(four.size())));
  body["context"] = ctx;
  body["prompt"] = "And 3 + 3?";
  const Reply next = post(srv, "/api/generate", body, script("Six."));
  EXPECT_EQ(next.body["response"], "Six.");
  EXPECT_GT(next.body["prompt_eval_count"].get<size_t>(), ctx.size());
  body["context"] = json::array({-1});
  expect_error(post(srv, "/api/generate", body), 400, "context");

  // Streaming: response pieces, then the closing object with the context.
  body = {{"model", "deepseek-reasoner"}, {"prompt", "2 + 2?"}};
  r = post(srv, "/api/generate", body, script(kThinking));
  std::string thinking, response;
  for (const json& j : r.body) {
    thinking += j.value("thinking", "");
    response += j["response"].get<std::string>();
  }
  EXPECT_EQ(thinking, "Two plus two.");
  EXPECT_EQ(response, "It is 4.");
  EXPECT_TRUE(r.body.back()["context"].is_array());

  // raw: no template around the prompt.
  body = {{"model", "deepseek-chat"}, {"prompt", "hello"}, {"raw", true}, {"stream", false}};
  r = post(srv, "/api/generate", body, script(" world"));
  EXPECT_EQ(r.body["response"], " world");
  EXPECT_EQ(r.body["prompt_eval_count"], 2);  // BOS + "hello"
}

TEST(Ollama, ToolCallsWithObjectArguments) {
  TestServer srv;
  json body = chat("deepseek-chat");
  body["tools"] = json::array({{{"type", "function"},
                                {"function", {{"name", "get_weather"},
                                              {"description", "Weather of a city"},
                                              {"parameters", {{"type", "object"},
                                                              {"properties", {{"city", {{"type", "string"}}}}}}}}}}});
  Reply r = post(srv, "/api/chat", body, script("Let me check." + kCall));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["message"]["content"], "Let me check.");
  ASSERT_EQ(r.body["message"]["tool_calls"].size(), 1u) << r.raw;
  const json& f = r.body["message"]["tool_calls"][0]["function"];
  EXPECT_EQ(f["name"], "get_weather");
  EXPECT_EQ(f["arguments"], json({{"city", "Paris"}}));
  EXPECT_EQ(r.body["done_reason"], "stop");

  body["stream"] = true;
  r = post(srv, "/api/chat", body, script("Let me check." + kCall));
  std::string content;
  json calls = json::array();
  for (const json& j : r.body) {
    content += j["message"]["content"].get<std::string>();
    if (j["message"].contains("tool_calls"))
      for (const json& c : j["message"]["tool_calls"]) calls.push_back(c);
  }
  EXPECT_EQ(content, "Let me check.");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["function"]["arguments"], json({{"city", "Paris"}}));

  // Arguments that are no JSON object stay in the content, unparsed.
  body["stream"] = false;
  const std::string broken = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
                             "```json\nParis\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  r = post(srv, "/api/chat", body, script(broken));
  EXPECT_FALSE(r.body["message"].contains("tool_calls"));
  EXPECT_NE(r.body["message"]["content"].get<std::string>().find("Paris"), std::string::npos);

  // The call and its result go back in, in Ollama's shape.
  const json call = {{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}};
  body["messages"].push_back({{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}});
  body["messages"].push_back({{"role", "tool"}, {"tool_name", "get_weather"}, {"content", "18C"}});
  r = post(srv, "/api/chat", body, script("It is 18C."));
  EXPECT_EQ(r.body["message"]["content"], "It is 18C.");
}

TEST(Ollama, OptionsAndFormat) {
  TestServer srv;
  json body = chat("deepseek-chat");
  body["options"] = {{"stop", {"wor"}}};
  EXPECT_EQ(post(srv, "/api/chat", body, script("Hello world!")).body["message"]["content"], "Hello ");
  body["options"] = {{"num_predict", 3}, {"num_ctx", 4096}, {"num_thread", 2}};
  Reply r = post(srv, "/api/chat", body);
  EXPECT_EQ(r.body["done_reason"], "length");
  EXPECT_EQ(r.body["eval_count"], 3);
  // A seed gives the same sample again (temperature 1, top_k and top_p on).
  body["options"] = {{"num_predict", 8}, {"seed", 1234}, {"temperature", 1.0}, {"top_k", 50}, {"top_p", 0.9}};
  const json a = post(srv, "/api/chat", body).body["message"];
  EXPECT_EQ(post(srv, "/api/chat", body).body["message"], a);
  // format json: a JSON object.
  body = chat("deepseek-chat");
  body["format"] = "json";
  body["options"] = {{"temperature", 0}, {"num_predict", 200}};
  r = post(srv, "/api/chat", body);
  const std::string content = r.body["message"]["content"];
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content[0], '{');
  if (r.body["done_reason"] == "stop") {
    EXPECT_TRUE(json::parse(content, nullptr, false).is_object()) << content;
  }
}

TEST(Ollama, Errors) {
  serve::ServerOptions so = TestServer::defaults();
  so.max_body_bytes = 4096;
  TestServer srv(so);
  expect_error(post(srv, "/api/chat", chat("llama3")), 404, "model \"llama3\" not found");
  expect_error(post(srv, "/api/generate", {{"model", "x:7b"}, {"prompt", "hi"}}), 404, "model \"x:7b\" not found");
  expect_error(post(srv, "/api/chat", json("{\"model\": ")), 400, "not valid JSON");
  expect_error(post(srv, "/api/chat", json::array({1})), 400, "JSON object");
  expect_error(post(srv, "/api/chat", {{"messages", user("hi")}}), 400, "model is required");
  struct Case {
    const char* field;
    json value;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"stream", "yes", "stream"},
      {"think", "maybe", "think"},
      {"format", "xml", "format"},
      {"format", {{"type", "object"}}, "JSON schemas"},
      {"options", 3, "options"},
      {"options", {{"temperature", "hot"}}, "options.temperature"},
      {"options", {{"top_p", 0}}, "options.top_p"},
      {"options", {{"top_k", -1}}, "options.top_k"},
      {"options", {{"num_predict", 0}}, "options.num_predict"},
      {"options", {{"stop", {1}}}, "options.stop"},
      {"keep_alive", json::array(), "keep_alive"},
      {"messages", "hi", "messages"},
      {"messages", json::array({{{"role", "wizard"}, {"content", "x"}}}), "messages[0].role"},
      {"messages", json::array({{{"role", "user"}, {"content", "x"}, {"images", {"aGk="}}}}), "images"},
  };
  for (const Case& k : cases) {
    json body = chat("deepseek-chat");
    body[k.field] = k.value;
    SCOPED_TRACE(std::string(k.field) + " = " + k.value.dump());
    expect_error(post(srv, "/api/chat", body), 400, k.says);
  }
  const json with_image = {{"model", "deepseek-chat"}, {"prompt", "hi"}, {"images", {"aGk="}}};
  expect_error(post(srv, "/api/generate", with_image), 400, "images");
  json big = chat("deepseek-chat");
  big["messages"][0]["content"] = std::string(10000, 'a');
  expect_error(post(srv, "/api/chat", big), 413, "exceeds 4096 bytes");
}

TEST(Ollama, DeadlineEndsWithAnErrorLine) {
  serve::ServerOptions so = TestServer::defaults();
  so.request_timeout = 0.3;
  so.keepalive_interval = 30;  // the non-streaming status must not be committed to 200 first
  generate::EngineOptions eo = TestServer::engine_defaults();
  eo.context = 8192 + 64;  // neither the context nor EOS (greedy) ends the request first
  eo.max_seqs = 2;
  TestServer srv(so, eo);
  json body = chat("deepseek-chat");
  body["options"] = {{"num_predict", -2}, {"temperature", 0}};
  expect_error(post(srv, "/api/chat", body), 503, "timed out");
  body["stream"] = true;
  const Reply r = post(srv, "/api/chat", body);
  EXPECT_EQ(r.status, 200);
  ASSERT_FALSE(r.body.empty());
  const json& last = r.body.back();
  ASSERT_TRUE(last.size() == 1 && last["error"].is_string()) << last.dump();
  EXPECT_NE(last["error"].get<std::string>().find("timed out"), std::string::npos);
}

TEST(Ollama, TagsShowPsVersion) {
  TestServer srv;
  auto c = srv.client();
  auto v = c.Get("/api/version");
  ASSERT_TRUE(v);
  const std::string version = json::parse(v->body)["version"];
  EXPECT_TRUE(std::regex_match(version, std::regex(R"(\d+\.\d+\.\d+)"))) << version;

  auto t = c.Get("/api/tags");
  ASSERT_TRUE(t);
  const json tags = json::parse(t->body)["models"];
  std::vector<std::string> names;
  for (const json& m : tags) {
    names.push_back(m["name"]);
    EXPECT_EQ(m["model"], m["name"]);
    EXPECT_TRUE(std::regex_match(m["digest"].get<std::string>(), std::regex("[0-9a-f]{64}")));
    EXPECT_GT(m["size"].get<int64_t>(), 0);
    EXPECT_TRUE(m["modified_at"].is_string());
    EXPECT_EQ(m["details"]["family"], "deepseek2");
    EXPECT_EQ(m["details"]["format"], "safetensors");
    EXPECT_TRUE(std::regex_match(m["details"]["parameter_size"].get<std::string>(), std::regex(R"(\d+\.\dM)")));
    EXPECT_FALSE(m["details"]["quantization_level"].get<std::string>().empty());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"tiny:latest", "deepseek-chat:latest", "deepseek-reasoner:latest"}));

  auto p = c.Get("/api/ps");
  ASSERT_TRUE(p);
  const json ps = json::parse(p->body)["models"];
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0]["context_length"], srv.engine().context());
  EXPECT_TRUE(ps[0]["size_vram"].is_number_integer());
  // Never unloaded: the expiry lies far ahead (not Go's zero time, which reads as expired).
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  EXPECT_GT(std::stoi(ps[0]["expires_at"].get<std::string>().substr(0, 4)), tm.tm_year + 1900 + 50) << ps[0];

  Reply r = post(srv, "/api/show", {{"model", "deepseek-reasoner:latest"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& info = r.body["model_info"];
  const model::ModelConfig& cfg = srv.engine().model().config();
  EXPECT_EQ(info["general.architecture"], "deepseek2");
  EXPECT_EQ(info["deepseek2.block_count"], cfg.num_hidden_layers);
  EXPECT_EQ(info["deepseek2.embedding_length"], cfg.hidden_size);
  EXPECT_EQ(info["deepseek2.context_length"], cfg.max_position_embeddings);
  EXPECT_EQ(info["deepseek2.expert_count"], cfg.n_routed_experts);
  EXPECT_EQ(info["deepseek2.expert_used_count"], cfg.num_experts_per_tok);
  EXPECT_EQ(info["deepseek2.attention.kv_lora_rank"], cfg.kv_lora_rank);
  EXPECT_EQ(info["deepseek2.attention.key_length"], cfg.qk_nope_head_dim + cfg.qk_rope_head_dim);
  EXPECT_EQ(r.body["details"]["family"], "deepseek2");
  EXPECT_NE(r.body["template"].get<std::string>().find("Assistant"), std::string::npos);
  EXPECT_NE(r.body["parameters"].get<std::string>().find("temperature 0.6"), std::string::npos);
  const std::string modelfile = r.body["modelfile"];
  const size_t from = modelfile.find("FROM ");
  ASSERT_NE(from, std::string::npos) << modelfile;
  EXPECT_EQ(modelfile.substr(from, modelfile.find('\n', from) - from).find('/'), std::string::npos)
      << "the server's paths stay private: " << modelfile;
  EXPECT_EQ(r.body["capabilities"], json({"completion", "tools", "thinking"}));
  expect_error(post(srv, "/api/show", {{"model", "nope"}}), 404, "model \"nope\" not found");
}

TEST(Ollama, ApiKeyGuardsTheOllamaRoutes) {
  serve::ServerOptions so = TestServer::defaults();
  so.api_key = "sk-test-123";
  TestServer srv(so);
  expect_error(post(srv, "/api/chat", chat("deepseek-chat")), 401, "API key");
  auto tags = srv.client().Get("/api/tags");
  ASSERT_TRUE(tags);
  EXPECT_EQ(tags->status, 401);
  const Reply ok = post(srv, "/api/chat", chat("deepseek-chat"),
                        {{"Authorization", "Bearer sk-test-123"}, {"X-Seek-Test-Script", json("Hi.").dump()}});
  EXPECT_EQ(ok.status, 200);
}

}  // namespace
}  // namespace seek::test
