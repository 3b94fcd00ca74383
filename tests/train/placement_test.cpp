// Which ranks of a training job hold which tensors (train/placement.h): a pipeline rank holds its
// stages' layers, the last stage the final norm, head and MTP modules, the embedding both ends;
// DualPipe's rank r also holds stage P−1−r; expert ranks split the routed experts. A part of the
// model initializes to the whole model's values.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "model/params.h"
#include "model/test_configs.h"
#include "train/placement.h"

using namespace seek;
using namespace seek::train;

namespace {

model::ModelConfig four_layers() {
  model::ModelConfig c = model::test::tiny_v3();
  c.num_hidden_layers = 4;
  return c;
}

JobShape pipeline_of(int P, int directions, int replicas = 1, int experts = 1) {
  JobShape s;
  s.pipeline = P;
  s.replicas = replicas;
  s.experts = experts;
  s.directions = directions;
  for (int i = 0; i < P; ++i) s.stage_layers.emplace_back(i * 4 / P, (i + 1) * 4 / P);
  return s;
}

std::set<std::string> names(const model::Params& p) {
  std::set<std::string> out;
  for (const model::ParamInfo& i : p.infos()) out.insert(i.name);
  return out;
}

// What pipeline rank r of P should hold running `stages` (written out here apart from
// placement.cpp's rules).
bool expected(const model::ParamInfo& i, const std::set<int>& stages, int P) {
  const int layers_per_stage = 4 / P;
  if (i.spec.mtp || (i.spec.layer < 0 && i.spec.role != model::TensorRole::Embedding)) return stages.count(P - 1) > 0;
  if (i.spec.role == model::TensorRole::Embedding) return stages.count(0) > 0 || stages.count(P - 1) > 0;
  return stages.count(int(i.spec.layer) / layers_per_stage) > 0;
}

}  // namespace

TEST(Placement, OneF1BRanksHoldTheirStageAndTheEmbeddingBothEnds) {
  const model::ModelConfig c = four_layers();
  const model::Params whole = model::Params::layout_only(c);
  const Placement placement(c, pipeline_of(4, 1));
  size_t total = 0, embedding = 0;
  for (const model::ParamInfo& i : whole.infos())
    if (i.spec.role == model::TensorRole::Embedding) embedding = size_t(i.numel);
  for (int r = 0; r < 4; ++r) {
    const model::Params mine = model::Params::layout_only(c, placement.of_rank(r));
    for (const model::ParamInfo& i : whole.infos())
      EXPECT_EQ(mine.find(i.name) != nullptr, expected(i, {r}, 4)) << "rank " << r << " " << i.name;
    total += mine.size();
    // Regions back to back, each tensor inside its own.
    size_t at = 0;
    for (const model::ParamRegion& g : mine.regions()) {
      EXPECT_EQ(g.begin, at);
      at = g.end;
    }
    EXPECT_EQ(at, mine.size());
    for (const model::ParamInfo& i : mine.infos()) {
      const auto g = std::find_if(mine.regions().begin(), mine.regions().end(),
                                  [&](const model::ParamRegion& x) { return x.id == i.region; });
      ASSERT_NE(g, mine.regions().end());
      EXPECT_GE(i.offset, g->begin);
      EXPECT_LE(i.offset + size_t(i.numel), g->end);
    }
  }
  // Every tensor once, the embedding twice (stage 0 embeds, the last stage's MTP module too).
  EXPECT_EQ(total, whole.size() + embedding);
  // Stage 0: its layers alone, and the embedding it shares with stage 3: two regions.
  EXPECT_EQ(model::Params::layout_only(c, placement.of_rank(0)).regions().size(), 2u);
  EXPECT_EQ(model::Params::layout_only(c, placement.of_rank(1)).regions().size(), 1u);
}

TEST(Placement, DualPipeRankAlsoHoldsTheMirroredStage) {
  const model::ModelConfig c = four_layers();
  const model::Params whole = model::Params::layout_only(c);
  const Placement placement(c, pipeline_of(4, 2));
  for (int r = 0; r < 4; ++r) {
    const model::Params mine = model::Params::layout_only(c, placement.of_rank(r));
    for (const model::ParamInfo& i : whole.infos())
      EXPECT_EQ(mine.find(i.name) != nullptr, expected(i, {r, 3 - r}, 4)) << "rank " << r << " " << i.name;
  }
  // Ranks r and 3 − r hold the same tensors in the same places (their gradients are summed).
  for (int r = 0; r < 2; ++r) {
    const model::Params a = model::Params::layout_only(c, placement.of_rank(r));
    const model::Params b = model::Params::layout_only(c, placement.of_rank(3 - r));
    ASSERT_EQ(a.infos().size(), b.infos().size());
    for (size_t k = 0; k < a.infos().size(); ++k) {
      EXPECT_EQ(a.infos()[k].name, b.infos()[k].name);
      EXPECT_EQ(a.infos()[k].offset, b.infos()[k].offset);
    }
  }
}

TEST(Placement, ExpertSharesInsideEachStageCoverTheModel) {
  const model::ModelConfig c = four_layers();  // 4 routed experts
  const model::Params whole = model::Params::layout_only(c);
  // 2 replicas × 2 stages (rank = replica·2 + stage), the replicas splitting the experts.
  const Placement placement(c, pipeline_of(2, 1, 2, 2));
  std::map<std::string, std::set<int>> holders;
  for (int r = 0; r < 4; ++r)
    for (const std::string& n : names(model::Params::layout_only(c, placement.of_rank(r)))) holders[n].insert(r);
  for (const model::ParamInfo& i : whole.infos()) {
    const std::set<int>& h = holders[i.name];
    ASSERT_FALSE(h.empty()) << i.name;
    const bool last = i.spec.mtp || i.spec.layer >= 2 || (i.spec.layer < 0 && i.spec.role != model::TensorRole::Embedding);
    std::set<int> stages;
    for (int r : h) stages.insert(r % 2);
    if (i.spec.role == model::TensorRole::Embedding) EXPECT_EQ(stages, (std::set<int>{0, 1})) << i.name;
    else EXPECT_EQ(stages, (std::set<int>{last ? 1 : 0})) << i.name;
    if (i.spec.expert >= 0) {  // experts 0-1 on replica 0, 2-3 on replica 1
      EXPECT_EQ(h.size(), 1u) << i.name;
      EXPECT_EQ(*h.begin() / 2, i.spec.expert / 2) << i.name;
    } else {
      EXPECT_EQ(h.size(), i.spec.role == model::TensorRole::Embedding ? 4u : 2u) << i.name;
    }
  }
}

TEST(Placement, APartInitializesToTheWholeModelsValues) {
  const model::ModelConfig c = four_layers();
  const model::Params whole = model::Params::init(c, 0.3, 9);
  const Placement placement(c, pipeline_of(2, 1, 2, 2));
  for (int r = 0; r < 4; ++r) {
    const model::Params mine = model::Params::init(c, 0.3, 9, placement.of_rank(r));
    for (const model::ParamInfo& i : mine.infos()) {
      const model::ParamInfo* w = whole.find(i.name);
      ASSERT_NE(w, nullptr);
      for (int64_t j = 0; j < i.numel; ++j)
        ASSERT_EQ(mine.data()[i.offset + size_t(j)], whole.data()[w->offset + size_t(j)]) << i.name;
    }
  }
}
