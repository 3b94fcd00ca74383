// GET /api/tags, /api/ps, /api/version and POST /api/show: the served model in Ollama's terms.
// Every name of the registry is listed (deepseek-chat, deepseek-reasoner, the model's own); the
// architecture facts are the ones llama.cpp writes into a deepseek2 GGUF (general.*,
// deepseek2.*), from the checkpoint's config.json, so clients that size contexts or show model
// cards from them read the same keys as from Ollama.
#include <sys/stat.h>

#include "model/transformer.h"
#include "serve/api_error.h"
#include "serve/ollama_impl.h"

namespace seek::serve {

using nlohmann::json;

namespace {

// The Ollama API release whose fields these routes follow; clients gate features on it.
constexpr const char* kOllamaVersion = "0.12.6";

// "671.0B", "15.7B", "1.2M" as Ollama prints parameter counts.
std::string parameter_size(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.1f}B", double(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.1f}M", double(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", double(n) / 1e3);
  return std::to_string(n);
}

struct ModelFacts {
  int64_t params = 0, bytes = 0;
  std::string quantization;  // BF16 | F16 | F32 | FP8 (the stored weights)
  std::string digest;        // 64 hex digits
  std::string modified_at;
};

ModelFacts facts(const ServerState& s) {
  const model::Model& m = s.engine.model();
  const model::ModelConfig& c = m.config();
  const model::ModelStats st = model::model_stats(m);
  ModelFacts f;
  f.params = st.params_total;
  f.bytes = st.weight_bytes_total;
  const double per = f.params > 0 ? double(f.bytes) / double(f.params) : 2.0;
  f.quantization = per < 1.5 ? "FP8" : per > 3.0 ? "F32" : c.torch_dtype == "float16" ? "F16" : "BF16";
  // Not a file hash (the weights may be many files, or none when borrowed): a stable 256-bit
  // name of what is served, from the config and the weight sizes, so it changes when they do.
  const std::string key = c.to_json().dump() + "|" + std::to_string(f.bytes) + "|" + m.dir();
  for (uint64_t seed :
       {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9e3779b97f4a7c15ull, 0x2545f4914f6cdd1dull}) {
    uint64_t h = seed;
    for (unsigned char ch : key) h = (h ^ ch) * 0x100000001b3ull;
    f.digest += fmt::format("{:016x}", h);
  }
  struct stat st_file{};
  auto when = std::chrono::system_clock::now();  // a borrowed model has no files
  if (!m.dir().empty() && ::stat((m.dir() + "/config.json").c_str(), &st_file) == 0)
    when = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::seconds(st_file.st_mtim.tv_sec) + std::chrono::nanoseconds(st_file.st_mtim.tv_nsec)));
  f.modified_at = ollama_time(when);
  return f;
}

json details(const ModelFacts& f) {
  return {{"parent_model", ""},
          {"format", "safetensors"},
          {"family", "deepseek2"},
          {"families", {"deepseek2"}},
          {"parameter_size", parameter_size(f.params)},
          {"quantization_level", f.quantization}};
}

json listing(const ModelSpec& spec, const ModelFacts& f) {
  return {{"name", ollama_name(spec)}, {"model", ollama_name(spec)}, {"modified_at", f.modified_at},
          {"size", f.bytes}, {"digest", f.digest}, {"details", details(f)}};
}

// The GGUF metadata llama.cpp's convert_hf_to_gguf.py writes for this config.
json model_info(const model::ModelConfig& c, int64_t params) {
  json j = {{"general.architecture", "deepseek2"},
            {"general.parameter_count", params},
            {"deepseek2.block_count", c.num_hidden_layers},
            {"deepseek2.context_length", c.max_position_embeddings},
            {"deepseek2.embedding_length", c.hidden_size},
            {"deepseek2.feed_forward_length", c.intermediate_size},
            {"deepseek2.attention.head_count", c.num_attention_heads},
            {"deepseek2.attention.head_count_kv", c.num_attention_heads},
            {"deepseek2.attention.kv_lora_rank", c.kv_lora_rank},
            {"deepseek2.attention.key_length", c.qk_head_dim()},
            {"deepseek2.attention.value_length", c.v_head_dim},
            {"deepseek2.attention.layer_norm_rms_epsilon", c.rms_norm_eps},
            {"deepseek2.rope.freq_base", c.rope_theta},
            {"deepseek2.rope.dimension_count", c.qk_rope_head_dim},
            {"deepseek2.leading_dense_block_count", c.first_k_dense_replace},
            {"deepseek2.expert_count", c.n_routed_experts},
            {"deepseek2.expert_used_count", c.num_experts_per_tok},
            {"deepseek2.expert_shared_count", c.n_shared_experts},
            {"deepseek2.expert_feed_forward_length", c.moe_intermediate_size},
            {"deepseek2.expert_weights_scale", c.routed_scaling_factor},
            {"deepseek2.expert_weights_norm", c.norm_topk_prob},
            // llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE: 1 softmax, 2 sigmoid
            {"deepseek2.expert_gating_func", c.scoring_func == model::ScoringFunc::Sigmoid ? 2 : 1},
            {"deepseek2.vocab_size", c.vocab_size},
            {"deepseek2.nextn_predict_layers", c.num_nextn_predict_layers},
            {"tokenizer.ggml.model", "gpt2"},
            {"tokenizer.ggml.bos_token_id", c.bos_token_id}};
  if (c.q_lora_rank > 0) j["deepseek2.attention.q_lora_rank"] = c.q_lora_rank;
  if (!c.eos_token_ids.empty()) j["tokenizer.ggml.eos_token_id"] = c.eos_token_ids[0];
  if (c.yarn_active()) {
    const model::RopeScaling& y = *c.rope_scaling;
    j["deepseek2.rope.scaling.type"] = "yarn";
    j["deepseek2.rope.scaling.factor"] = y.factor;
    j["deepseek2.rope.scaling.original_context_length"] = y.original_max_position_embeddings;
    j["deepseek2.rope.scaling.yarn_log_multiplier"] = 0.1 * y.mscale_all_dim;
  }
  return j;
}

void show(ServerState& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  const ModelSpec& spec = ollama_model(s.opts.models, body, nullptr);
  const ModelFacts f = facts(s);
  const auto& tmpl = s.prompts.chat_template();
  const std::string tmpl_src = tmpl ? tmpl->source() : "";
  std::string parameters;
  if (spec.reasoner())
    parameters = fmt::format("temperature {}\ntop_p {}", spec.reasoner_temperature, spec.reasoner_top_p);
  parameters += (parameters.empty() ? "" : "\n") + fmt::format("num_predict {}", spec.max_tokens_default);
  // The directory's name only: where the server keeps its files is none of the client's business.
  std::string dir = s.engine.model().dir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string modelfile = fmt::format("# Served by seek\nFROM {}\n", dir.substr(dir.rfind('/') + 1));
  for (size_t at = 0, nl; at < parameters.size(); at = nl + 1) {
    nl = parameters.find('\n', at);
    if (nl == std::string::npos) nl = parameters.size();
    modelfile += "PARAMETER " + parameters.substr(at, nl - at) + "\n";
  }
  json caps = {"completion", "tools"};
  if (spec.reasoner()) caps.push_back("thinking");
  send_json(res, 200,
            {{"license", ""},
             {"modelfile", modelfile},
             {"parameters", parameters},
             {"template", tmpl_src},
             {"details", details(f)},
             {"model_info", model_info(s.engine.model().config(), f.params)},
             {"capabilities", caps},
             {"modified_at", f.modified_at}});
  s.metrics.request("ollama_show", 200);
}

}  // namespace

void add_ollama_info_routes(ServerState& s) {
  HttpServer& h = s.http;
  h.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"version", kOllamaVersion}});
  });
  h.Get("/api/tags", ollama_route(s, "ollama_tags", [&s](const httplib::Request&, httplib::Response& res) {
    const ModelFacts f = facts(s);
    json models = json::array();
    for (const ModelSpec& m : s.opts.models.models) models.push_back(listing(m, f));
    send_json(res, 200, {{"models", models}});
    s.metrics.request("ollama_tags", 200);
  }));
  // Loaded models: all of them, always (one engine holds the weights for every name).
  h.Get("/api/ps", ollama_route(s, "ollama_ps", [&s](const httplib::Request&, httplib::Response& res) {
    const ModelFacts f = facts(s);
    json models = json::array();
    for (const ModelSpec& m : s.opts.models.models) {
      json j = listing(m, f);
      j.erase("modified_at");
      // Never unloaded: a century ahead, as Ollama reports keep_alive -1 (a zero time would read
      // as already expired).
      j["expires_at"] = ollama_time(std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100));
      j["size_vram"] = 0;
      j["context_length"] = s.engine.context();
      models.push_back(std::move(j));
    }
    send_json(res, 200, {{"models", models}});
  }));
  h.Post("/api/show", ollama_route(s, "ollama_show", [&s](const httplib::Request& q, httplib::Response& r) {
    show(s, q, r);
  }));
}

}  // namespace seek::serve
