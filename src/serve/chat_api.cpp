// POST /v1/chat/completions: request → prompt → engine → chat.completion(.chunk) objects in
// DeepSeek's shape: reasoning_content beside content for the reasoner, tool_calls parsed out of
// the V3 tool-call tokens, logprobs for the chat model, usage with the prefix-cache split.
#include <ctime>

#include "serve/api_error.h"
#include "serve/responder.h"
#include "serve/tool_calls.h"

namespace seek::serve {

using nlohmann::json;
using generate::EngineResult;

namespace {

json logprob_entry(const tokenizer::Tokenizer& tok, int32_t id, float logprob) {
  const std::string_view raw = tok.id_to_bytes(id);
  json bytes = json::array();
  for (unsigned char c : raw) bytes.push_back(int(c));
  const int32_t one[1] = {id};
  return {{"token", tok.decode(one, false)}, {"logprob", logprob}, {"bytes", bytes}};
}

class ChatOutput final : public Output {
 public:
  ChatOutput(ServerState& s, const ChatRequest& r, bool reasoning)
      : s_(s), id_(s.new_id("chatcmpl-")), created_(int64_t(std::time(nullptr))),
        model_(r.model->name), reasoner_(r.model->reasoner()), reasoning_(reasoning),
        tools_(!r.tools.empty()), logprobs_(r.logprobs), top_(r.top_logprobs) {}

  bool wants_tokens() const override { return logprobs_; }

  json chunk_base() const override {
    return {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_},
            {"model", model_}, {"system_fingerprint", "fp_seek"}};
  }

  void start(std::vector<json>& chunks) override {
    json delta = {{"role", "assistant"}, {"content", ""}};
    if (reasoner_) delta = {{"role", "assistant"}, {"content", nullptr}, {"reasoning_content", ""}};
    chunks.push_back(chunk(delta, nullptr));
  }

  void event(const Event& e, std::vector<json>& chunks) override {
    if (e.kind == Event::Kind::Token) {
      if (!e.reasoning && e.logprobs && !s_.engine.is_eos(e.id)) {
        json entry = logprob_entry(s_.tok, e.id, e.logprobs->chosen.logprob);
        json top = json::array();
        for (const auto& t : e.logprobs->top) {
          if (int(top.size()) >= top_) break;
          top.push_back(logprob_entry(s_.tok, t.id, t.logprob));
        }
        entry["top_logprobs"] = std::move(top);
        pending_lp_.push_back(entry);
        all_lp_.push_back(std::move(entry));
      }
      return;
    }
    if (e.reasoning) {
      chunks.push_back(chunk({{"content", nullptr}, {"reasoning_content", e.text}}, nullptr));
      return;
    }
    content(tools_ ? filter_.push(e.text) : e.text, chunks);
  }

  void finish(const EngineResult& r, std::vector<json>& chunks) override {
    if (tools_) content(filter_.finish(), chunks);
    const ParsedToolCalls calls = parse(r);
    if (!calls.calls.empty())
      chunks.push_back(chunk({{"tool_calls", tool_calls_json(calls.calls, true)}}, nullptr));
    json last = chunk(json{{"content", ""}}, finish_reason(r, calls));
    if (logprobs_ && !pending_lp_.empty()) last["choices"][0]["logprobs"] = {{"content", pending_lp_}};
    chunks.push_back(std::move(last));
  }

  json response(const EngineResult& r) override {
    const ParsedToolCalls calls = parse(r);
    json msg = {{"role", "assistant"}, {"content", calls.content}};
    if (reasoner_) msg["reasoning_content"] = reasoning_ ? json(r.reasoning) : json(nullptr);
    if (!calls.calls.empty()) msg["tool_calls"] = tool_calls_json(calls.calls, false);
    json choice = {{"index", 0}, {"message", msg}, {"logprobs", nullptr},
                   {"finish_reason", finish_reason(r, calls)}};
    if (logprobs_) choice["logprobs"] = {{"content", all_lp_}};
    return {{"id", id_},
            {"object", "chat.completion"},
            {"created", created_},
            {"model", model_},
            {"choices", json::array({choice})},
            {"usage", usage_json(r)},
            {"system_fingerprint", "fp_seek"}};
  }

 private:
  json chunk(json delta, json finish) const {
    json c = chunk_base();
    c["choices"] = json::array(
        {{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", std::move(finish)}}});
    return c;
  }

  void content(const std::string& text, std::vector<json>& chunks) {
    if (text.empty()) return;
    json delta = {{"content", text}};
    if (reasoner_) delta["reasoning_content"] = nullptr;
    json c = chunk(std::move(delta), nullptr);
    if (logprobs_) {
      c["choices"][0]["logprobs"] = {{"content", pending_lp_}};
      pending_lp_ = json::array();
    }
    chunks.push_back(std::move(c));
  }

  ParsedToolCalls parse(const EngineResult& r) const {
    if (!tools_) return ParsedToolCalls{r.text, {}};
    return parse_tool_calls(r.text, id_.substr(id_.find('-') + 1, 12));
  }

  static const char* finish_reason(const EngineResult& r, const ParsedToolCalls& calls) {
    if (!calls.calls.empty()) return "tool_calls";
    return r.finish == generate::FinishReason::Length ? "length" : "stop";
  }

  ServerState& s_;
  std::string id_;
  int64_t created_;
  std::string model_;
  bool reasoner_, reasoning_, tools_, logprobs_;
  int top_;
  ToolCallFilter filter_;
  json pending_lp_ = json::array();  // streaming: logprobs not yet attached to a chunk
  json all_lp_ = json::array();
};

}  // namespace

generate::EngineRequest chat_engine_request(ServerState& s, const httplib::Request& req, const ChatRequest& r,
                                            const BuiltPrompt& p) {
  generate::EngineRequest er = engine_request(s, r.sampling, p.ids);
  er.reasoning = p.reasoning;
  er.starts_in_thinking = p.starts_in_thinking;
  if (p.reasoning) er.max_reasoning_tokens = r.model->reasoning_budget;
  er.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  if (!p.forced.empty())
    er.processor = std::make_shared<generate::ScriptedLogits>(s.tok.encode(p.forced, false));
  else if (r.json_object)
    er.processor = std::make_shared<JsonObjectLogits>(s.token_bytes(), s.eos_ids());
  const std::string script = test_script(s, req, s.opts.test_script);
  if (!script.empty())  // tests: the output of a random-weight model, forced
    er.processor = std::make_shared<generate::ScriptedLogits>(s.tok.encode(script, false), s.tok.eos_id());
  return er;
}

void handle_chat(ServerState& s, const httplib::Request& req, httplib::Response& res) {
  const ChatRequest r = parse_chat_request(parse_body(req), s.opts.models);
  const BuiltPrompt p = s.prompts.chat(r, size_t(s.engine.context()));
  generate::EngineRequest er = chat_engine_request(s, req, r, p);
  auto out = std::make_shared<ChatOutput>(s, r, p.reasoning);
  respond(s, res, "chat_completions", std::move(er), std::move(out), r.sampling.stream,
          r.sampling.include_usage);
}

}  // namespace seek::serve
