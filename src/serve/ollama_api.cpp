// POST /api/chat and /api/generate: an Ollama request becomes the DeepSeek request it means
// (parse_chat_request / parse_completion_request validate it), runs through the same prompt
// builder, engine submission and responder, and is answered in Ollama's shapes (ollama_api.h).
#include "serve/ollama_api.h"

#include <ctime>

#include "serve/ollama_impl.h"
#include "serve/responder.h"
#include "serve/tool_calls.h"

namespace seek::serve {

using nlohmann::json;
using generate::EngineResult;

namespace {

template <typename... Args>
[[noreturn]] void invalid(fmt::format_string<Args...> f, Args&&... args) {
  throw ApiError(400, fmt::format(f, std::forward<Args>(args)...), "invalid_request_error");
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t nanoseconds(double seconds) { return int64_t(seconds * 1e9); }

// What an Ollama body adds to the DeepSeek request it is translated into.
struct OllamaFields {
  std::string name;  // as the client wrote it (echoed in every answer)
  ModelRegistry one;  // the model this request runs as: `think` decides its mode
  bool think = false;
  // Thinking that arrives is returned unless think is false: a template that always thinks (R1)
  // thinks on a chat-mode name too.
  bool show_thinking = true;
  bool stream = true;
  bool unload = false;  // keep_alive 0
  // Options the DeepSeek API does not take, set on the sampler after parsing.
  generate::SamplingParams extra;
  json given = json::object();  // temperature / top_p / penalties as given (the reasoner keeps them)
};

// model, think, stream, keep_alive, format, options: checked here under Ollama's names and
// written into `out` (a DeepSeek body) under DeepSeek's.
OllamaFields common_fields(const ServerState& s, const json& body, json& out, bool completion) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  OllamaFields f;
  ModelSpec spec = ollama_model(s.opts.models, body, &f.name);
  f.think = spec.reasoner();
  if (const json* t = field(body, "think")) {
    if (t->is_boolean()) f.think = t->get<bool>();
    else if (t->is_string() && (*t == "high" || *t == "medium" || *t == "low")) f.think = true;
    else invalid("think must be true, false, \"high\", \"medium\" or \"low\"");
    if (f.think && !spec.reasoner()) invalid("\"{}\" does not support thinking", echo_name(f.name));
    f.show_thinking = f.think;
  }
  spec.mode = f.think ? Mode::Reasoner : Mode::Chat;
  f.one.models.push_back(spec);
  out["model"] = spec.name;

  if (const json* st = field(body, "stream")) {
    if (!st->is_boolean()) invalid("stream must be a boolean");
    f.stream = st->get<bool>();
  }
  if (const json* k = field(body, "keep_alive")) {  // "5m", "0", -1, 300: the model stays loaded
    if (!k->is_string() && !k->is_number()) invalid("keep_alive must be a duration string or a number");
    f.unload = (k->is_number() && k->get<double>() == 0) || (k->is_string() && (*k == "0" || *k == "0s"));
  }
  if (const json* fmt = field(body, "format")) {
    if (fmt->is_object())
      invalid("format: JSON schemas are not supported by this server (the output can be constrained "
              "to a JSON object only); use \"format\": \"json\"");
    if (!fmt->is_string() || (*fmt != "json" && *fmt != ""))
      invalid("format must be \"json\"");
    if (*fmt == "json") out["response_format"] = {{"type", "json_object"}};
  }

  const json* opts = field(body, "options");
  if (opts && !opts->is_object()) invalid("options must be an object");
  const json empty = json::object();
  const json& o = opts ? *opts : empty;
  auto number = [&](const char* name, double lo, double hi) -> std::optional<double> {
    const json* v = field(o, name);
    if (!v) return std::nullopt;
    if (!v->is_number()) invalid("options.{} must be a number", name);
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi)) invalid("options.{} must be between {} and {}, got {}", name, lo, hi, x);
    return x;
  };
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    const json* v = field(o, name);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)))
      invalid("options.{} must be an integer", name);
    return v->get<int64_t>();
  };
  if (auto t = number("temperature", 0, 2)) out["temperature"] = f.given["temperature"] = *t;
  if (auto p = number("top_p", 0, 1)) {
    if (*p <= 0) invalid("options.top_p must be greater than 0");
    out["top_p"] = f.given["top_p"] = *p;
  }
  if (auto p = number("presence_penalty", -2, 2)) out["presence_penalty"] = f.given["presence_penalty"] = *p;
  if (auto p = number("frequency_penalty", -2, 2)) out["frequency_penalty"] = f.given["frequency_penalty"] = *p;
  if (auto k = integer("top_k")) {
    if (*k < 0) invalid("options.top_k must be 0 (off) or more, got {}", *k);
    f.extra.top_k = int(std::min<int64_t>(*k, INT32_MAX));
  }
  if (auto m = number("min_p", 0, 1)) f.extra.min_p = float(*m);
  if (auto r = number("repeat_penalty", 0, 100)) {
    if (*r <= 0) invalid("options.repeat_penalty must be greater than 0");
    f.extra.repetition_penalty = float(*r);
  }
  if (auto seed = integer("seed"); seed && *seed >= 0) out["seed"] = *seed;  // < 0: random, as Ollama
  const int64_t limit = completion ? spec.completion_max_tokens_limit : spec.max_tokens_limit;
  if (auto n = integer("num_predict")) {
    if (*n == 0 || *n < -2)
      invalid("options.num_predict must be -1 (default), -2 (fill the context) or >= 1, got {}", *n);
    if (*n == -2 || *n > limit) out["max_tokens"] = limit;
    else if (*n > 0) out["max_tokens"] = *n;
  }
  if (auto c = integer("num_ctx"); c && *c < 1) invalid("options.num_ctx must be >= 1, got {}", *c);
  if (const json* stop = field(o, "stop")) {
    json list = stop->is_string() ? json::array({*stop}) : *stop;
    if (!list.is_array()) invalid("options.stop must be an array of strings");
    for (const json& x : list)
      if (!x.is_string() || x.get<std::string>().empty()) invalid("options.stop must hold non-empty strings");
    out["stop"] = std::move(list);
  }
  return f;
}

void apply_extra(SamplingFields& sf, const OllamaFields& f, bool reasoning) {
  generate::SamplingParams& p = sf.sampler;
  p.top_k = f.extra.top_k;
  p.min_p = f.extra.min_p;
  p.repetition_penalty = f.extra.repetition_penalty;
  // DeepSeek's reasoner ignores sampling values; an Ollama client sets them on purpose.
  if (reasoning) {
    if (f.given.contains("temperature")) p.temperature = f.given["temperature"].get<float>();
    if (f.given.contains("top_p")) p.top_p = f.given["top_p"].get<float>();
    if (f.given.contains("presence_penalty")) p.presence_penalty = f.given["presence_penalty"].get<float>();
    if (f.given.contains("frequency_penalty")) p.frequency_penalty = f.given["frequency_penalty"].get<float>();
  }
  sf.stream = f.stream;
}

void no_images(const json& m, const std::string& where, const std::string& model) {
  if (const json* im = field(m, "images"); im && !(im->is_array() && im->empty()))
    invalid("{}: \"{}\" reads text only and does not support images", where, echo_name(model));
}

// Ollama messages → DeepSeek messages: tool_name is the tool's name, a past answer's thinking
// is not fed back (DeepSeek's rule for reasoning_content), images are refused.
json chat_messages(const json& msgs, const std::string& model) {
  if (!msgs.is_array()) invalid("messages must be an array");
  json out = json::array();
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string at = fmt::format("messages[{}]", i);
    if (!msgs[i].is_object()) invalid("{} must be an object", at);
    json m = msgs[i];
    no_images(m, at, model);
    m.erase("images");
    m.erase("thinking");
    // Ollama reads a missing content as "" (Go's zero value); a tool-calling turn keeps its null.
    if (!m.contains("content") && !m.contains("tool_calls")) m["content"] = "";
    if (m.contains("tool_name")) {
      m["name"] = m["tool_name"];
      m.erase("tool_name");
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Tool calls with arguments as objects, or nullopt when the model wrote arguments that are no
// JSON object (then its text stays the content, as Ollama returns an unparsed call).
std::optional<json> ollama_tool_calls(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json args = json::parse(calls[i].arguments, nullptr, false);
    if (!args.is_object()) return std::nullopt;
    out.push_back({{"id", calls[i].id},
                   {"function", {{"index", i}, {"name", calls[i].name}, {"arguments", std::move(args)}}}});
  }
  return out;
}

class OllamaOutput final : public Output {
 public:
  // `chat`: /api/chat (a message) rather than /api/generate (response + context).
  OllamaOutput(ServerState& s, std::string model, bool chat, bool tools, bool thinking,
               std::vector<int32_t> prompt)
      : s_(s), id_(s.new_id("")), model_(std::move(model)), chat_(chat), tools_(tools),
        thinking_(thinking), prompt_(std::move(prompt)) {}

  bool ndjson() const override { return true; }
  json error_json(const ApiError& e) const override { return {{"error", e.what()}}; }
  json chunk_base() const override {
    return {{"model", model_}, {"created_at", ollama_time(std::chrono::system_clock::now())}};
  }

  void event(const Event& e, std::vector<json>& chunks) override {
    if (e.kind != Event::Kind::Text) return;
    if (e.reasoning) {
      if (thinking_ && !e.text.empty()) chunks.push_back(piece("", e.text, nullptr, false));
      return;
    }
    const std::string text = tools_ ? filter_.push(e.text) : e.text;
    if (!text.empty()) chunks.push_back(piece(text, "", nullptr, false));
  }

  void finish(const EngineResult& r, std::vector<json>& chunks) override {
    std::string rest = tools_ ? filter_.finish() : "";
    json calls = nullptr;
    if (tools_ && filter_.in_calls()) {
      const ParsedToolCalls parsed = parse_tool_calls(r.text, id_.substr(0, 12));
      auto c = ollama_tool_calls(parsed.calls);
      if (c && !c->empty()) calls = std::move(*c);
      else rest += r.text.substr(std::min(r.text.size(), r.text.find(kToolCallsBegin)));
    }
    if (!rest.empty() || !calls.is_null()) chunks.push_back(piece(rest, "", std::move(calls), false));
    chunks.push_back(done(r, piece("", "", nullptr, true)));
  }

  json response(const EngineResult& r) override {
    std::string content = r.text;
    json calls = nullptr;
    if (tools_) {
      const ParsedToolCalls parsed = parse_tool_calls(r.text, id_.substr(0, 12));
      if (auto c = ollama_tool_calls(parsed.calls); c && !c->empty()) {
        content = parsed.content;
        calls = std::move(*c);
      }
    }
    return done(r, piece(content, thinking_ ? r.reasoning : "", std::move(calls), true));
  }

 private:
  // One object of the stream (or the whole answer): content / thinking / tool calls as a chat
  // message or as generate's response + thinking.
  json piece(const std::string& content, const std::string& thinking, json calls, bool last) const {
    json j = chunk_base();
    if (chat_) {
      json msg = {{"role", "assistant"}, {"content", content}};
      if (!thinking.empty()) msg["thinking"] = thinking;
      if (!calls.is_null()) msg["tool_calls"] = std::move(calls);
      j["message"] = std::move(msg);
    } else {
      j["response"] = content;
      if (!thinking.empty()) j["thinking"] = thinking;
    }
    j["done"] = last;
    return j;
  }

  json done(const EngineResult& r, json j) const {
    j["done_reason"] = r.finish == generate::FinishReason::Length ? "length" : "stop";
    if (!chat_) {
      // The conversation so far as token ids, for the next request's "context".
      std::vector<int32_t> ctx = prompt_;
      for (int32_t id : r.tokens)
        if (!s_.engine.is_eos(id)) ctx.push_back(id);
      j["context"] = std::move(ctx);
    }
    j["total_duration"] = nanoseconds(r.total_seconds);
    j["load_duration"] = nanoseconds(r.queue_seconds);
    j["prompt_eval_count"] = r.prompt_tokens;
    j["prompt_eval_duration"] = nanoseconds(r.prefill_seconds);
    j["eval_count"] = r.completion_tokens;
    j["eval_duration"] = nanoseconds(r.decode_seconds);
    return j;
  }

  ServerState& s_;
  std::string id_;
  std::string model_;
  bool chat_, tools_, thinking_;
  std::vector<int32_t> prompt_;
  ToolCallFilter filter_;
};

// A request with nothing to generate loads (or, with keep_alive 0, unloads) the model in
// Ollama; the model here is always loaded, so it answers at once.
void load_answer(httplib::Response& res, const OllamaFields& f, bool chat) {
  json j = {{"model", f.name}, {"created_at", ollama_time(std::chrono::system_clock::now())}};
  if (chat) j["message"] = {{"role", "assistant"}, {"content", ""}};
  else j["response"] = "";
  j["done"] = true;
  j["done_reason"] = f.unload ? "unload" : "load";
  send_json(res, 200, j);
}

void handle_ollama_chat(ServerState& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  json ds = json::object();
  const OllamaFields f = common_fields(s, body, ds, false);
  const json* msgs = field(body, "messages");
  if (!msgs || (msgs->is_array() && msgs->empty())) return load_answer(res, f, true);
  ds["messages"] = chat_messages(*msgs, f.name);
  if (const json* tools = field(body, "tools")) ds["tools"] = *tools;
  ChatRequest r = parse_chat_request(ds, f.one);
  apply_extra(r.sampling, f, r.reasoning());
  const BuiltPrompt p = s.prompts.chat(r, size_t(s.engine.context()));
  generate::EngineRequest er = chat_engine_request(s, req, r, p);
  auto out = std::make_shared<OllamaOutput>(s, f.name, true, !r.tools.empty(), f.show_thinking,
                                           std::vector<int32_t>{});
  respond(s, res, "ollama_chat", std::move(er), std::move(out), f.stream, false);
}

std::string string_field(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return {};
  if (!v->is_string()) invalid("{} must be a string", name);
  return v->get<std::string>();
}

void handle_ollama_generate(ServerState& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  const bool raw = body.is_object() && body.contains("raw") && body["raw"].is_boolean() && body["raw"].get<bool>();
  const bool fim = body.is_object() && field(body, "suffix");
  json ds = json::object();
  const OllamaFields f = common_fields(s, body, ds, raw || fim);
  if (const json* r = field(body, "raw"); r && !r->is_boolean()) invalid("raw must be a boolean");
  no_images(body, "images", f.name);
  if (!string_field(body, "template").empty())
    invalid("template: overriding the chat template per request is not supported; the model's own is used");
  const std::string prompt = string_field(body, "prompt");
  const std::string system = string_field(body, "system");
  std::vector<int32_t> context;
  if (const json* c = field(body, "context")) {
    const int64_t vocab = s.engine.model().config().vocab_size;
    if (!c->is_array()) invalid("context must be an array of token ids");
    for (const json& id : *c) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab)
        invalid("context must hold token ids between 0 and {}", vocab - 1);
      context.push_back(int32_t(id.get<int64_t>()));
    }
  }
  if (prompt.empty() && !fim) return load_answer(res, f, false);

  BuiltPrompt p;
  generate::EngineRequest er;
  if (raw || fim) {  // the prompt as written (FIM: DeepSeek's fill-in-the-middle tokens)
    ds["prompt"] = prompt;
    if (fim) ds["suffix"] = body["suffix"];
    CompletionRequest r = parse_completion_request(ds, f.one, fim);
    apply_extra(r.sampling, f, false);
    p = s.prompts.completion(r, size_t(s.engine.context()));
    er = engine_request(s, r.sampling, p.ids);
    if (ds.contains("response_format"))
      er.processor = std::make_shared<JsonObjectLogits>(s.token_bytes(), s.eos_ids());
    if (const std::string script = test_script(s, req, {}); !script.empty())
      er.processor = std::make_shared<generate::ScriptedLogits>(s.tok.encode(script, false), s.tok.eos_id());
  } else {  // the prompt as the user's turn of the chat template, after the system prompt
    ds["messages"] = json::array();
    if (!system.empty()) ds["messages"].push_back({{"role", "system"}, {"content", system}});
    ds["messages"].push_back({{"role", "user"}, {"content", prompt}});
    ChatRequest r = parse_chat_request(ds, f.one);
    apply_extra(r.sampling, f, r.reasoning());
    p = s.prompts.chat(r, size_t(s.engine.context()));
    er = chat_engine_request(s, req, r, p);
  }
  if (!context.empty()) {  // the earlier conversation, then this prompt (without a second BOS)
    std::vector<int32_t> ids = context;
    const bool bos = !p.ids.empty() && p.ids[0] == s.tok.bos_id();
    ids.insert(ids.end(), p.ids.begin() + (bos ? 1 : 0), p.ids.end());
    if (int64_t(ids.size()) >= s.engine.context())
      invalid("context and prompt hold {} tokens but the context limit is {}", ids.size(), s.engine.context());
    er.prompt = ids;
    p.ids = std::move(ids);
  }
  auto out = std::make_shared<OllamaOutput>(s, f.name, false, false, f.show_thinking, p.ids);
  respond(s, res, "ollama_generate", std::move(er), std::move(out), f.stream, false);
}

}  // namespace

const ModelSpec* find_ollama_model(const ModelRegistry& models, std::string_view name) {
  if (const ModelSpec* m = models.find(name)) return m;
  constexpr std::string_view latest = ":latest";
  if (name.size() > latest.size() && name.substr(name.size() - latest.size()) == latest)
    return models.find(name.substr(0, name.size() - latest.size()));
  return nullptr;
}

const ModelSpec& ollama_model(const ModelRegistry& models, const json& body, std::string* name_out) {
  const json* v = field(body, "model");
  if (!v) v = field(body, "name");
  if (!v) invalid("model is required");
  if (!v->is_string()) invalid("model must be a string");
  const std::string name = v->get<std::string>();
  const ModelSpec* m = find_ollama_model(models, name);
  if (!m) throw ApiError(404, fmt::format("model \"{}\" not found", echo_name(name)), "invalid_request_error");
  if (name_out) *name_out = name;
  return *m;
}

std::string ollama_name(const ModelSpec& m) {
  return m.name.find(':') == std::string::npos ? m.name + ":latest" : m.name;
}

std::string ollama_time(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000);
}

OllamaHandler ollama_route(ServerState& s, std::string endpoint, OllamaHandler fn) {
  return [&s, endpoint = std::move(endpoint), fn = std::move(fn)](const httplib::Request& req,
                                                                   httplib::Response& res) {
    const std::optional<ApiError> e = run_route(s, req, [&] { fn(req, res); });
    if (!e) return;
    // Ollama has no 422; a full queue is its "server busy" 503.
    const int status = e->status == 422 ? 400 : e->status == 429 ? 503 : e->status;
    s.metrics.request(endpoint, status);
    send_json(res, status, {{"error", e->what()}});
    if (status == 503) res.set_header("Retry-After", "1");
  };
}

void add_ollama_routes(ServerState& s) {
  s.http.Post("/api/chat", ollama_route(s, "ollama_chat", [&s](const httplib::Request& q, httplib::Response& r) {
    handle_ollama_chat(s, q, r);
  }));
  s.http.Post("/api/generate", ollama_route(s, "ollama_generate", [&s](const httplib::Request& q,
                                                                      httplib::Response& r) {
    handle_ollama_generate(s, q, r);
  }));
  add_ollama_info_routes(s);
}

}  // namespace seek::serve
