// End to end: a random checkpoint loads through the model's own loader (which checks every name,
// shape and dtype) and its logits are finite and O(1), with the residual stream growing no faster
// than sqrt(depth), as the initialisation in make_model.h intends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "model/transformer.h"
#include "tools/make_model.h"

namespace seek::tools {
namespace {

namespace fs = std::filesystem;

struct Case {
  const char* preset;
  WeightFormat format;
  int layers;
};

class RandomModelForward : public ::testing::TestWithParam<Case> {};

TEST_P(RandomModelForward, LogitsAreFiniteAndOrderOne) {
  const Case& c = GetParam();
  const fs::path dir =
      fs::temp_directory_path() / fmt::format("seek_random_forward_{}_{}", ::getpid(), c.preset);
  MakeModelOptions o;
  o.config = preset(c.preset);
  o.config.num_hidden_layers = c.layers;
  o.format = c.format;
  o.seed = 42;
  make_random_model(o, dir.string());

  auto m = model::Model::load(dir.string());
  const int64_t T = 12, V = m->config().vocab_size, H = m->config().hidden_size;
  model::KVCache cache(m->config(), 1, T);
  model::Batch b;
  for (int64_t i = 0; i < T; ++i) b.tokens.push_back(int32_t((i * 7919 + 13) % V));
  b.seqs.push_back({0, 0, T, true});
  std::vector<float> logits, hs;
  model::ForwardOptions fo;
  fo.hidden_states = &hs;
  model::forward(*m, cache, b, logits, fo);
  ASSERT_EQ(logits.size(), size_t(T * V));

  std::set<int64_t> argmax;
  for (int64_t t = 0; t < T; ++t) {
    const float* r = logits.data() + t * V;
    double sum = 0, sq = 0;
    for (int64_t v = 0; v < V; ++v) {
      ASSERT_TRUE(std::isfinite(r[v])) << "token " << t << " logit " << v;
      sum += r[v];
      sq += double(r[v]) * r[v];
    }
    const double sd = std::sqrt(sq / double(V) - std::pow(sum / double(V), 2));
    EXPECT_GT(sd, 0.5) << t;
    EXPECT_LT(sd, 2.0) << t;
    argmax.insert(std::max_element(r, r + V) - r);
  }
  EXPECT_GE(argmax.size(), size_t(T / 2));  // not collapsed onto one token

  const double layers = double(c.layers);
  double ss = 0;
  for (int64_t i = 0; i < T * H; ++i) ss += std::pow(hs[size_t(c.layers * T * H + i)], 2);
  EXPECT_LT(std::sqrt(ss / double(T * H)), 2.0 * std::sqrt(layers + 1));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Presets, RandomModelForward,
                         ::testing::Values(Case{"tiny-v3", WeightFormat::FP8, 12},
                                           Case{"tiny-v2", WeightFormat::BF16, 4}),
                         [](const auto& info) {
                           std::string s = info.param.preset;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace seek::tools
