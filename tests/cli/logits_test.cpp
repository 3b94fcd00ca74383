// `seek logits` against the official reference logits of every fixture.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/harness.h"

namespace seek::cli_test {
namespace {

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

class LogitsCommand : public ::testing::TestWithParam<const char*> {};

TEST_P(LogitsCommand, MatchesTheReference) {
  const std::string dir = kModels + GetParam();
  const auto ref = nlohmann::json::parse(slurp(dir + "/reference.json"));
  std::string ids;
  for (int id : ref["prompt"]["token_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  TempDir tmp;
  const std::string out = tmp / "logits.f32";
  Result r = run_seek({"logits", dir, "--ids", ids, "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(contains(r.err, "[16, 1000]")) << r.err;
  const std::vector<float> got = floats(slurp(out));
  const std::vector<float> want = floats(slurp(dir + "/logits.f32"));
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0.0;
  for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
  EXPECT_LT(max_diff, 1e-3);
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  // Same logits with the ids on stdin as a JSON list, and with naive attention.
  Result r2 = run_seek({"logits", dir, "--ids", "-", "-o", tmp / "b.f32", "--naive"},
                       ref["prompt"]["token_ids"].dump());
  ASSERT_EQ(r2.code, 0) << r2.err;
  const std::vector<float> got2 = floats(slurp(tmp / "b.f32"));
  ASSERT_EQ(got2.size(), want.size());
  for (size_t i = 0; i < got2.size(); ++i) ASSERT_NEAR(got2[i], want[i], 1e-3) << i;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LogitsCommand,
                         ::testing::Values("v3-tiny", "v3-tiny-fp8", "v2-lite-tiny"));

TEST(LogitsCommand, RejectsBadIds) {
  TempDir tmp;
  Result r = run_seek({"logits", kModels + "v3-tiny", "--ids", "0,5,1000", "--out", tmp / "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "seek: error:") && contains(r.err, "vocab_size 1000")) << r.err;
  r = run_seek({"logits", kModels + "v3-tiny", "--ids", "1,two", "--out", tmp / "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--ids")) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "x"));
}

}  // namespace
}  // namespace seek::cli_test
