// The JSON recognizer against nlohmann's parser, and the logits processor keeping any sampled
// sequence a valid JSON prefix.
#include "serve/json_constraint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "generate/sampler.h"
#include "generate/test_model.h"

namespace seek::serve {
namespace {

bool accepts(std::string_view s) {
  JsonRecognizer r;
  return r.feed(s);
}
bool complete(std::string_view s) {
  JsonRecognizer r;
  return r.feed(s) && r.complete();
}

TEST(JsonRecognizer, AcceptsObjectsAndTheirPrefixes) {
  const std::vector<std::string> good = {
      R"({})",
      R"({"a":1})",
      R"({"a": [1, -2.5e+3, 0, 0.25, true, false, null, "x\"y\\u00e9\n"], "b": {"c": {}}})",
      "{\n  \"k\": \"v\",\n  \"n\": [ ]\n}",
      R"({"emoji": "😀"})",
  };
  for (const std::string& g : good) {
    SCOPED_TRACE(g);
    EXPECT_TRUE(complete(g));
    for (size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(accepts(g.substr(0, i)));
    EXPECT_FALSE(nlohmann::json::parse(g, nullptr, false).is_discarded());
  }
}

TEST(JsonRecognizer, RejectsWhatIsNotJson) {
  for (const char* bad : {"[1]", " {}", "\"x\"", "{a:1}", "{\"a\" 1}", "{\"a\":01}", "{\"a\":1,}",
                          "{\"a\":-}", "{\"a\":1.}", "{\"a\":tru }", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}",
                          "{}}", "{} x", "{\"a\":[1 2]}", "{\"a\":1e}", "{\"a\":\"\\u12g4\"}"}) {
    SCOPED_TRACE(bad);
    JsonRecognizer r;
    EXPECT_FALSE(r.feed(std::string_view(bad)) && r.complete());
    EXPECT_TRUE(nlohmann::json::parse(bad, nullptr, false).is_discarded() || bad[0] != '{');
  }
  EXPECT_FALSE(accepts("{\n\n\n\n\n\n"));  // whitespace runs are bounded
}

TEST(JsonObjectLogits, SampledTextStaysValidJson) {
  const auto& tok = test::test_tokenizer();
  const int64_t vocab = test::test_model().config().vocab_size;
  auto table = TokenBytes::build(tok, vocab);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  int completed = 0;
  for (int trial = 0; trial < 4; ++trial) {
    JsonObjectLogits proc(table, {tok.eos_id()});
    generate::SamplingParams sp;
    sp.temperature = 1.0f;
    sp.seed = uint64_t(trial);
    generate::Sampler sampler(sp);
    generate::TokenHistory hist;
    std::string text;
    std::vector<int32_t> ids;
    std::vector<float> logits(static_cast<size_t>(vocab));
    for (int step = 0; step < 300 && !proc.done(); ++step) {
      for (float& l : logits) l = nd(rng);
      // Bias toward closing so that some trials finish.
      for (const char* close : {"}", "]", "\"", "\"}", "1", ","}) {
        auto ids = tok.encode(close, false);
        if (ids.size() == 1) logits[size_t(ids[0])] += 6.0f;
      }
      proc.process(logits, step);
      const int32_t id = sampler.sample(logits, hist);
      proc.accept(id);
      text += table->bytes[size_t(id)];
      ids.push_back(id);
      ASSERT_TRUE(accepts(text)) << text;
    }
    if (proc.done()) {
      ++completed;
      // What the client receives: the detokenizer replaces bytes that are not UTF-8 with U+FFFD.
      const std::string decoded = tok.decode(ids, true);
      const auto j = nlohmann::json::parse(decoded, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << testing::PrintToString(decoded);
      EXPECT_TRUE(j.is_object()) << text;
    }
  }
  EXPECT_GT(completed, 0);
}

}  // namespace
}  // namespace seek::serve
