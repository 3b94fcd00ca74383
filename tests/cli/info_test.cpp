// `seek info`: the numbers it reports for the fixtures, checked against the files themselves.
#include <nlohmann/json.hpp>

#include "cli/harness.h"
#include "core/safetensors.h"

namespace seek::cli_test {
namespace {

nlohmann::json info(const std::string& fixture) {
  Result r = run_seek({"info", kModels + fixture, "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

int64_t total_params(const std::string& fixture) {
  TensorStore store = TensorStore::open(kModels + fixture, LoadMode::Mmap);
  int64_t n = 0;
  for (const Tensor& t : store.tensors())
    if (!t.name.ends_with("weight_scale_inv")) n += t.numel();
  return n;
}

TEST(InfoCommand, V3TinyJson) {
  const nlohmann::json j = info("v3-tiny");
  EXPECT_EQ(j["model_type"], "deepseek_v3");
  EXPECT_EQ(j["architectures"][0], "DeepseekV3ForCausalLM");
  EXPECT_EQ(j["layers"]["total"], 3);
  EXPECT_EQ(j["layers"]["dense"], 1);
  EXPECT_EQ(j["layers"]["moe"], 2);
  EXPECT_EQ(j["attention"]["num_attention_heads"], 4);
  EXPECT_EQ(j["attention"]["q_lora_rank"], 96);
  EXPECT_EQ(j["attention"]["kv_lora_rank"], 64);
  EXPECT_NEAR(j["attention"]["softmax_scale"].get<double>(), 0.18713033519502428, 1e-12);
  EXPECT_EQ(j["moe"]["n_routed_experts"], 16);
  EXPECT_EQ(j["moe"]["n_shared_experts"], 1);
  EXPECT_EQ(j["moe"]["num_experts_per_tok"], 4);
  EXPECT_EQ(j["moe"]["topk_method"], "noaux_tc");
  EXPECT_EQ(j["moe"]["scoring_func"], "sigmoid");
  EXPECT_EQ(j["rope"]["scaling"]["type"], "yarn");
  EXPECT_EQ(j["rope"]["scaling"]["factor"], 4.0);
  EXPECT_EQ(j["vocab_size"], 1000);
  EXPECT_EQ(j["mtp_modules"], 1);
  EXPECT_TRUE(j["quantization"].is_null());
  EXPECT_TRUE(j["dtypes"].contains("BF16"));
  EXPECT_TRUE(j["dtypes"].contains("F32"));  // e_score_correction_bias
  EXPECT_EQ(j["dtypes"]["F32"]["tensors"], 3);  // two MoE layers + the MTP layer
  EXPECT_EQ(j["params_total"], total_params("v3-tiny"));
  EXPECT_GT(j["params_active"].get<int64_t>(), 0);
  EXPECT_LT(j["params_active"].get<int64_t>(), j["params_total"].get<int64_t>());
  // MLA caches (kv_lora_rank + qk_rope) per layer; MHA would cache k (nope + rope) and v per head.
  const int64_t kv = j["kv_bytes_per_token"], mha = j["mha_kv_bytes_per_token"];
  EXPECT_EQ(mha * (64 + 16), kv * 4 * (48 + 32));
  EXPECT_NEAR(j["kv_ratio_mha_over_mla"].get<double>(), 4.0, 1e-9);
  EXPECT_GT(j["weight_bytes_per_token"].get<int64_t>(), 0);
  EXPECT_LT(j["weight_bytes_per_token"].get<int64_t>(), j["weight_bytes_total"].get<int64_t>());
}

TEST(InfoCommand, Fp8AndV2Lite) {
  const nlohmann::json f = info("v3-tiny-fp8");
  EXPECT_EQ(f["quantization"]["quant_method"], "fp8");
  EXPECT_EQ(f["quantization"]["weight_block_size"], nlohmann::json({128, 128}));
  EXPECT_TRUE(f["dtypes"].contains("F8_E4M3"));
  EXPECT_EQ(f["params_total"], total_params("v3-tiny-fp8"));

  const nlohmann::json v2 = info("v2-lite-tiny");
  EXPECT_EQ(v2["model_type"], "deepseek_v2");
  EXPECT_EQ(v2["attention"]["q_lora_rank"], 0);
  EXPECT_EQ(v2["moe"]["n_shared_experts"], 2);
  EXPECT_TRUE(v2["rope"]["scaling"].is_null());
  EXPECT_EQ(v2["mtp_modules"], 0);
  EXPECT_EQ(v2["params_total"], total_params("v2-lite-tiny"));
  EXPECT_NEAR(v2["kv_ratio_mha_over_mla"].get<double>(), 4.0 * (48 + 24) / (64 + 16), 1e-9);
}

TEST(InfoCommand, Text) {
  Result r = run_seek({"info", kModels + "v3-tiny"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = info("v3-tiny");
  for (const std::string& part : std::vector<std::string>{
           "deepseek_v3", "DeepseekV3ForCausalLM", "3: 1 dense + 2 MoE", "MLA, 4 heads",
           "q_lora_rank 96", "kv_lora_rank 64", "16 routed + 1 shared, top-4", "sigmoid scores, noaux_tc",
        "4 groups, best 2 kept", "yarn factor 4", "vocab", "1000", "BF16",
        std::to_string(j["params_total"].get<int64_t>()),
        std::to_string(j["params_active"].get<int64_t>()), "4.0x", "1 module"})
    EXPECT_TRUE(contains(r.out, part)) << "missing \"" << part << "\" in\n" << r.out;
}

}  // namespace
}  // namespace seek::cli_test
