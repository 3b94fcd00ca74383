// POST /v1/completions (plain prompt) and /beta/completions (fill-in-the-middle: prompt +
// suffix): text_completion objects, for code models.
#include <ctime>

#include "serve/api_error.h"
#include "serve/responder.h"

namespace seek::serve {

using nlohmann::json;
using generate::EngineResult;

namespace {

class CompletionOutput final : public Output {
 public:
  CompletionOutput(ServerState& s, const CompletionRequest& r)
      : s_(s), id_(s.new_id("cmpl-")), created_(int64_t(std::time(nullptr))), model_(r.model->name),
        echo_(r.echo ? r.prompt : std::string()), logprobs_(r.logprobs) {}

  bool wants_tokens() const override { return logprobs_ >= 0; }

  json chunk_base() const override {
    return {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_},
            {"system_fingerprint", "fp_seek"}};
  }

  void start(std::vector<json>& chunks) override {
    if (!echo_.empty()) chunks.push_back(chunk(echo_, nullptr));
  }

  void event(const Event& e, std::vector<json>& chunks) override {
    if (e.kind == Event::Kind::Token) {
      if (e.logprobs && !s_.engine.is_eos(e.id)) {
        const int32_t one[1] = {e.id};
        tokens_.push_back(s_.tok.decode(one, false));
        token_lp_.push_back(e.logprobs->chosen.logprob);
        json top = json::object();
        for (const auto& t : e.logprobs->top) {
          if (int(top.size()) >= logprobs_) break;
          const int32_t alt[1] = {t.id};
          top[s_.tok.decode(alt, false)] = t.logprob;
        }
        top_.push_back(std::move(top));
      }
      return;
    }
    chunks.push_back(chunk(e.text, nullptr));
  }

  void finish(const EngineResult& r, std::vector<json>& chunks) override {
    chunks.push_back(chunk("", finish_reason(r)));
  }

  json response(const EngineResult& r) override {
    json choice = {{"index", 0}, {"text", echo_ + r.text}, {"logprobs", nullptr},
                   {"finish_reason", finish_reason(r)}};
    if (logprobs_ >= 0) {
      json offsets = json::array();
      size_t at = echo_.size();
      for (const std::string& t : tokens_) {
        offsets.push_back(at);
        at += t.size();
      }
      choice["logprobs"] = {{"tokens", tokens_}, {"token_logprobs", token_lp_},
                            {"top_logprobs", top_}, {"text_offset", offsets}};
    }
    json body = chunk_base();
    body["choices"] = json::array({choice});
    body["usage"] = usage_json(r);
    return body;
  }

 private:
  json chunk(const std::string& text, json finish) const {
    json c = chunk_base();
    c["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                                 {"finish_reason", std::move(finish)}}});
    return c;
  }
  static const char* finish_reason(const EngineResult& r) {
    return r.finish == generate::FinishReason::Length ? "length" : "stop";
  }

  ServerState& s_;
  std::string id_;
  int64_t created_;
  std::string model_;
  std::string echo_;
  int logprobs_;
  std::vector<std::string> tokens_;
  std::vector<float> token_lp_;
  json top_ = json::array();
};

}  // namespace

void handle_completion(ServerState& s, const httplib::Request& req, httplib::Response& res, bool fim) {
  const CompletionRequest r = parse_completion_request(parse_body(req), s.opts.models, fim);
  const BuiltPrompt p = s.prompts.completion(r, size_t(s.engine.context()));
  generate::EngineRequest er = engine_request(s, r.sampling, p.ids);
  er.top_logprobs = r.logprobs;
  if (const std::string script = test_script(s, req, {}); !script.empty())
    er.processor = std::make_shared<generate::ScriptedLogits>(s.tok.encode(script, false), s.tok.eos_id());
  respond(s, res, fim ? "beta_completions" : "completions", std::move(er),
          std::make_shared<CompletionOutput>(s, r), r.sampling.stream, r.sampling.include_usage);
}

}  // namespace seek::serve
