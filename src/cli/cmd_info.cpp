// seek info: what a checkpoint is and what it costs per token.
#include <map>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"

namespace seek::cli {

namespace {

struct DtypeUse {
  int64_t tensors = 0;
  int64_t bytes = 0;
};

nlohmann::json info_json(const std::string& dir, const model::Model& m) {
  const model::ModelConfig& c = m.config();
  const model::ModelStats st = model::model_stats(m);
  // A GGUF file has no config.json: the architectures are what the config would write.
  const nlohmann::json raw = is_gguf_file(dir) ? c.to_json()
                                               : parse_json(read_file(dir + "/config.json"), dir + "/config.json");

  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.is_moe_layer(l) ? 1 : 0;
  std::map<std::string, DtypeUse> dtypes;
  for (const Tensor& t : m.weights_store().tensors()) {
    DtypeUse& u = dtypes[std::string(dtype_name(t.dtype))];
    ++u.tensors;
    u.bytes += int64_t(t.nbytes);
  }

  nlohmann::json j;
  j["model_dir"] = dir;
  j["model_type"] = c.model_type;
  j["architectures"] = raw.value("architectures", nlohmann::json::array());
  j["layers"] = {{"total", c.num_hidden_layers},
                 {"dense", c.num_hidden_layers - moe_layers},
                 {"moe", moe_layers},
                 {"first_k_dense_replace", c.first_k_dense_replace},
                 {"moe_layer_freq", c.moe_layer_freq}};
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["attention"] = {{"type", "MLA"},
                    {"num_attention_heads", c.num_attention_heads},
                    {"q_lora_rank", c.q_lora_rank},
                    {"kv_lora_rank", c.kv_lora_rank},
                    {"qk_nope_head_dim", c.qk_nope_head_dim},
                    {"qk_rope_head_dim", c.qk_rope_head_dim},
                    {"v_head_dim", c.v_head_dim},
                    {"softmax_scale", c.softmax_scale()}};
  if (c.n_routed_experts > 0)
    j["moe"] = {{"n_routed_experts", c.n_routed_experts},
                {"n_shared_experts", c.n_shared_experts},
                {"num_experts_per_tok", c.num_experts_per_tok},
                {"moe_intermediate_size", c.moe_intermediate_size},
                {"scoring_func", model::hf_name(c.scoring_func)},
                {"topk_method", model::hf_name(c.topk_method)},
                {"n_group", c.n_group},
                {"topk_group", c.topk_group},
                {"norm_topk_prob", c.norm_topk_prob},
                {"routed_scaling_factor", c.routed_scaling_factor}};
  else
    j["moe"] = nullptr;
  nlohmann::json rope = {{"rope_theta", c.rope_theta}, {"scaling", nullptr}};
  if (c.rope_scaling) {
    // The config.json fields under their HF names, as the config writes them.
    rope["scaling"] = c.to_json()["rope_scaling"];
    rope["scaling"]["active"] = c.yarn_active();
  }
  j["rope"] = rope;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["vocab_size"] = c.vocab_size;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = c.torch_dtype;
  nlohmann::json dt = nlohmann::json::object();
  for (const auto& [name, u] : dtypes) dt[name] = {{"tensors", u.tensors}, {"bytes", u.bytes}};
  j["dtypes"] = dt;
  if (c.quantization_config) {
    const auto& q = *c.quantization_config;
    j["quantization"] = {{"quant_method", q.quant_method},
                         {"fmt", q.fmt},
                         {"activation_scheme", q.activation_scheme},
                         {"weight_block_size", {q.block_rows, q.block_cols}}};
  } else {
    j["quantization"] = nullptr;
  }
  j["params_total"] = st.params_total;
  j["params_active"] = st.params_active;
  j["weight_bytes_total"] = st.weight_bytes_total;
  j["weight_bytes_per_token"] = st.weight_bytes_per_token;
  j["kv_bytes_per_token"] = st.kv_bytes_per_token;
  j["mha_kv_bytes_per_token"] = st.mha_kv_bytes_per_token;
  j["kv_ratio_mha_over_mla"] =
      st.kv_bytes_per_token > 0 ? double(st.mha_kv_bytes_per_token) / double(st.kv_bytes_per_token) : 0.0;
  j["mtp_modules"] = c.num_nextn_predict_layers;
  return j;
}

std::string info_text(const nlohmann::json& j) {
  std::string s;
  auto row = [&](std::string_view label, const std::string& value) {
    s += fmt::format("{:<14}{}\n", label, value);
  };
  std::string arch = j["model_type"].get<std::string>();
  if (!j["architectures"].empty()) arch += ", " + j["architectures"][0].get<std::string>();
  row("model", fmt::format("{} ({})", j["model_dir"].get<std::string>(), arch));

  const auto& L = j["layers"];
  row("layers", fmt::format("{}: {} dense + {} MoE, hidden size {}", L["total"].get<int64_t>(),
                            L["dense"].get<int64_t>(), L["moe"].get<int64_t>(),
                            j["hidden_size"].get<int64_t>()));
  const auto& a = j["attention"];
  const int64_t q_lora = a["q_lora_rank"];
  row("attention",
      fmt::format("MLA, {} heads, {}, kv_lora_rank {}, qk_nope {} + qk_rope {}, v {}",
                  a["num_attention_heads"].get<int64_t>(),
                  q_lora > 0 ? fmt::format("q_lora_rank {}", q_lora) : std::string("direct q_proj"),
                  a["kv_lora_rank"].get<int64_t>(), a["qk_nope_head_dim"].get<int64_t>(),
                  a["qk_rope_head_dim"].get<int64_t>(), a["v_head_dim"].get<int64_t>()));
  if (L["dense"].get<int64_t>() > 0)
    row("dense FFN", fmt::format("SwiGLU, intermediate size {}", j["intermediate_size"].get<int64_t>()));
  if (!j["moe"].is_null()) {
    const auto& m = j["moe"];
    std::string routing = fmt::format("{} scores, {}", m["scoring_func"].get<std::string>(),
                                      m["topk_method"].get<std::string>());
    if (m["n_group"].get<int64_t>() > 1)
      routing += fmt::format(" ({} groups, best {} kept)", m["n_group"].get<int64_t>(),
                             m["topk_group"].get<int64_t>());
    routing += m["norm_topk_prob"].get<bool>() ? ", weights normalised" : ", weights not normalised";
    routing += fmt::format(", scaled by {}", m["routed_scaling_factor"].get<double>());
    row("experts", fmt::format("{} routed + {} shared, top-{} per token, expert FFN {}",
                               m["n_routed_experts"].get<int64_t>(),
                               m["n_shared_experts"].get<int64_t>(),
                               m["num_experts_per_tok"].get<int64_t>(),
                               m["moe_intermediate_size"].get<int64_t>()));
    row("routing", routing);
  }
  const auto& r = j["rope"];
  std::string rope = fmt::format("theta {}", r["rope_theta"].get<double>());
  if (!r["scaling"].is_null()) {
    const auto& y = r["scaling"];
    rope += fmt::format(", {} factor {} (original {} positions, beta {}/{}, mscale {}/{}){}",
                        y["type"].get<std::string>(), y["factor"].get<double>(),
                        y["original_max_position_embeddings"].get<int64_t>(),
                        y["beta_fast"].get<double>(), y["beta_slow"].get<double>(),
                        y["mscale"].get<double>(), y["mscale_all_dim"].get<double>(),
                        y["active"].get<bool>() ? "" : ", inactive");
  }
  row("rope", rope);
  row("context", fmt::format("{} positions", j["max_position_embeddings"].get<int64_t>()));
  row("vocab", fmt::format("{}", j["vocab_size"].get<int64_t>()));
  std::string dts;
  for (const auto& [name, u] : j["dtypes"].items())
    dts += fmt::format("{}{} ({} tensors, {})", dts.empty() ? "" : ", ", name,
                       u["tensors"].get<int64_t>(), human_bytes(double(u["bytes"].get<int64_t>())));
  row("dtypes", dts);
  if (!j["quantization"].is_null()) {
    const auto& q = j["quantization"];
    row("quantization", fmt::format("{} {}, {}x{} weight blocks, {} activations",
                                    q["quant_method"].get<std::string>(), q["fmt"].get<std::string>(),
                                    q["weight_block_size"][0].get<int64_t>(),
                                    q["weight_block_size"][1].get<int64_t>(),
                                    q["activation_scheme"].get<std::string>()));
  } else {
    row("quantization", "none");
  }
  const int64_t total = j["params_total"], active = j["params_active"];
  row("parameters", fmt::format("{} total ({}), {} active per token ({})", human_count(double(total)),
                                total, human_count(double(active)), active));
  row("weights", fmt::format("{} total, {} read per decoded token",
                             human_bytes(double(j["weight_bytes_total"].get<int64_t>())),
                             human_bytes(double(j["weight_bytes_per_token"].get<int64_t>()))));
  const int64_t kv = j["kv_bytes_per_token"], mha = j["mha_kv_bytes_per_token"];
  row("KV cache", fmt::format("{} B per token (MLA latent + rope key); an MHA cache would take {} B, "
                              "{:.1f}x more",
                              kv, mha, j["kv_ratio_mha_over_mla"].get<double>()));
  const int64_t mtp = j["mtp_modules"];
  row("MTP", mtp > 0 ? fmt::format("{} module{} (stored as layer {})", mtp, mtp > 1 ? "s" : "",
                                   L["total"].get<int64_t>())
                     : std::string("none"));
  return s;
}

}  // namespace

Command add_info(CLI::App& app) {
  struct Opts {
    std::string dir;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model: architecture, sizes, per-token costs");
  cmd->add_option("MODEL_DIR", o->dir, "Model directory")->required();
  cmd->add_flag("--json", o->json, "Print JSON instead of text");
  return {cmd, [o]() -> int {
            check_model_dir(o->dir);
            model::LoadOptions opts;
            opts.mode = LoadMode::Mmap;  // nothing is computed: mapping is enough and instant
            auto m = model::Model::load(o->dir, opts);
            const nlohmann::json j = info_json(o->dir, *m);
            write_stdout(o->json ? j.dump(2) + "\n" : info_text(j));
            return 0;
          }};
}

}  // namespace seek::cli
