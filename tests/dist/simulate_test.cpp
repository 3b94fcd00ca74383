// `seek simulate`'s cost model: the stages hold exactly the checkpoint's parameters, DeepSeek-V3
// on 2048 H800 (configs/simulate) against the report, and layout errors.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "dist/simulate.h"
#include "model/tensors.h"
#include "model/test_configs.h"

using namespace seek;
using namespace seek::dist;

namespace {

const std::string kConfigs = std::string(SEEK_SOURCE_DIR) + "/configs/simulate/";

// The parameters of `m`'s checkpoint that the cost model counts: everything but norm gains, the
// router bias and the MTP modules' copies of the embedding and head.
double checkpoint_params(const model::ModelConfig& m) {
  double n = 0;
  for (const model::TensorSpec& t : model::model_tensors(m)) {
    if (t.role == model::TensorRole::Norm || t.role == model::TensorRole::RouterBias) continue;
    if (t.mtp && (t.role == model::TensorRole::Embedding || t.role == model::TensorRole::Head)) continue;
    double k = 1;
    for (int64_t d : t.shape) k *= double(d);
    n += k;
  }
  return n;
}

SimHardware h800() { return SimHardware::load(kConfigs + "h800.json"); }

}  // namespace

TEST(Simulate, StagesHoldExactlyTheCheckpointsParameters) {
  for (const auto& [P, E] : {std::pair{1, 1}, {2, 2}, {2, 4}}) {
    SimConfig c;
    c.model = model::test::tiny_v3();
    c.seq_len = 16;
    c.global_batch = 8;
    c.pipeline = P;
    c.expert = E;
    c.gpus = 4 * P;
    const std::vector<StageCost> st = stage_costs(c, h800());
    ASSERT_EQ(int(st.size()), P);
    double n = 0;
    int64_t layers = 0;
    for (const StageCost& s : st) n += s.params + s.expert_params * double(E), layers += s.layers;
    EXPECT_EQ(layers, c.model.num_hidden_layers);
    EXPECT_DOUBLE_EQ(n, checkpoint_params(c.model)) << "P" << P << " E" << E;
  }
}

// DeepSeek-V3 (671B + the MTP module) on the report's cluster: DualPipe beats 1F1B on bubble and
// step time, holds twice the parameters and still fits 80 GB, and the cost per trillion tokens
// lands within a factor of two of the report's 180K GPU-hours (the printed ratio is the check).
TEST(Simulate, DeepSeekV3OnTheReportsCluster) {
  const SimConfig c = SimConfig::load(kConfigs + "deepseek-v3.json");
  const SimHardware h = h800();
  const std::vector<StageCost> st = stage_costs(c, h);
  ASSERT_EQ(st.size(), 16u);
  double n = 0;
  for (const StageCost& s : st) n += s.params + s.expert_params * double(c.expert);
  EXPECT_DOUBLE_EQ(n, checkpoint_params(c.model));
  EXPECT_GT(n, 671e9);
  EXPECT_LT(n, 690e9);
  const SimResult a = simulate_training(c, h, "1f1b"), b = simulate_training(c, h, "dualpipe");
  EXPECT_EQ(a.micro_batches, 120);
  EXPECT_LT(b.pipe.bubble, a.pipe.bubble / 2);
  EXPECT_LT(b.step_s, a.step_s);
  EXPECT_NEAR(b.weights_b / a.weights_b, 2.0, 0.6);  // stages r and 15-r: twice the parameters
  EXPECT_LT(b.total_b, h.memory_bytes);
  for (const SimResult& r : {a, b}) {
    EXPECT_GT(r.gpu_hours_per_t, 180e3 / 2) << r.schedule;
    EXPECT_LT(r.gpu_hours_per_t, 180e3 * 2) << r.schedule;
  }
  const std::string report = simulation_report(c, h, {a, b});
  EXPECT_NE(report.find("| pipeline bubble |"), std::string::npos) << report;
  EXPECT_NE(report.find("the reported 180K"), std::string::npos) << report;
}

TEST(Simulate, ALayoutThatDoesNotDivideIsAClearError) {
  const std::string path = ::testing::TempDir() + "/seek_simulate_layout.json";
  const auto bad = [&](const std::string& parallel, const std::string& train = R"({"seq_len": 64, "batch_size": 64})") {
    std::string model = model::test::tiny_v3_model_json(64, 40);
    model.insert(1, R"("model_type": "deepseek_v3", )");
    std::ofstream(path) << R"({"model": )" + model + R"(, "train": )" + train +
                               R"(, "parallel": )" + parallel + "}";
    try {
      SimConfig::load(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(bad(R"({"gpus": 8, "pipeline": 2, "expert": 3})").find("\"expert\" 3 does not divide the 4 data-parallel ranks"), std::string::npos);
  EXPECT_NE(bad(R"({"gpus": 16, "pipeline": 2, "expert": 8})").find("4 routed experts do not divide among 8 ranks"), std::string::npos);
  EXPECT_NE(bad(R"({"gpus": 6, "pipeline": 4})").find("6 GPUs do not split into pipelines of 4"), std::string::npos);
  EXPECT_NE(bad(R"({"gpus": 8, "pipeline": 2})", R"({"seq_len": 64, "batch_size": 6})").find("not a multiple of 4 data-parallel ranks"), std::string::npos);
  EXPECT_NE(bad(R"({"gpus": 8, "pipeline": 4})").find("4 pipeline stages for 2 layers"), std::string::npos);
  EXPECT_EQ(bad(R"({"gpus": 8, "pipeline": 2, "expert": 2})"), "");
}
