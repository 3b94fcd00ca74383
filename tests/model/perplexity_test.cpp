// Perplexity and the drift between two models (model/perplexity.h): the llama-perplexity
// convention computed by hand, no drift against itself, a small drift of a Q8_0 file from its
// original, and clear errors.
#include "model/perplexity.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "model/gguf_export.h"

namespace seek::model {
namespace {

const std::string kFixtures = SEEK_FIXTURES "/models/";

// Deterministic token ids in [1, V).
std::vector<int32_t> stream(int64_t n, int64_t V) {
  std::vector<int32_t> ids;
  uint64_t x = 12345;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    ids.push_back(int32_t(1 + (x >> 33) % uint64_t(V - 1)));
  }
  return ids;
}

TEST(Perplexity, FollowsTheLlamaPerplexityConvention) {
  auto m = Model::load(kFixtures + "v3-tiny");
  const int64_t V = m->config().vocab_size, ctx = 16;
  const std::vector<int32_t> ids = stream(3 * ctx + 5, V);  // 3 whole chunks, 5 tokens dropped
  PerplexityOptions po;
  po.ctx = ctx;
  po.precision = kernels::Precision::F32;
  const PerplexityResult r = perplexity(*m, ids, po);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(r.tokens, 3 * (ctx - 1 - ctx / 2));

  double nll = 0.0;
  for (int64_t k = 0; k < 3; ++k) {
    std::vector<int32_t> chunk(ids.begin() + k * ctx, ids.begin() + (k + 1) * ctx);
    chunk[0] = int32_t(m->config().bos_token_id);
    KVCache cache(m->config(), 1, ctx);
    std::vector<float> logits;
    ForwardOptions fo;
    fo.precision = kernels::Precision::F32;
    forward(*m, cache, Batch{chunk, {{0, 0, ctx, true}}}, logits, fo);
    for (int64_t j = ctx / 2; j < ctx - 1; ++j) {
      const float* row = logits.data() + j * V;
      double z = 0.0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]));
      nll += std::log(z) - double(row[chunk[size_t(j + 1)]]);
    }
  }
  EXPECT_NEAR(r.nll, nll, 1e-6 * nll);
  EXPECT_NEAR(r.ppl(), std::exp(nll / double(r.tokens)), 1e-9 * r.ppl());
  // A random stream over 1,000 tokens: near-uniform predictions, perplexity in the hundreds.
  EXPECT_GT(r.ppl(), 50.0);

  po.max_chunks = 2;
  EXPECT_EQ(perplexity(*m, ids, po).chunks, 2);
}

TEST(Perplexity, AModelDoesNotDriftFromItself) {
  auto m = Model::load(kFixtures + "v3-tiny");
  const std::vector<int32_t> ids = stream(64, m->config().vocab_size);
  PerplexityOptions po;
  po.ctx = 32;
  const PerplexityResult r = perplexity(*m, ids, po, m.get());
  EXPECT_EQ(r.tokens, 2 * 15);
  EXPECT_EQ(r.same_top, r.tokens);
  EXPECT_LT(r.kl, 1e-12);
  EXPECT_EQ(r.dp_sq, 0.0);
  EXPECT_DOUBLE_EQ(r.ppl(), r.ref_ppl());
}

// The same weights quantized to Q8_0 (a GGUF written as `seek quantize` does): small but
// nonzero drift, the same top token almost everywhere.
TEST(Perplexity, AQ8_0FileDriftsALittleFromItsOriginal) {
  auto orig = Model::load(kFixtures + "v3-tiny");
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("seek_perplexity_test." + std::to_string(::getpid()) + ".gguf"))
                               .string();
  GgufWriter w;
  add_model_to_gguf(*orig, DType::Q8_0, "v3-tiny", w);
  w.write(path);
  auto q8 = Model::load(path);
  std::filesystem::remove(path);
  const std::vector<int32_t> ids = stream(128, orig->config().vocab_size);
  PerplexityOptions po;
  po.ctx = 64;
  po.precision = kernels::Precision::F32;
  const PerplexityResult r = perplexity(*q8, ids, po, orig.get());
  ASSERT_EQ(r.tokens, 2 * 31);
  EXPECT_GT(r.kl, 0.0);
  EXPECT_LT(r.kl / double(r.tokens), 0.05);  // another model: ~4 (v3-tiny-fp8 vs v3-tiny)
  EXPECT_GE(double(r.same_top) / double(r.tokens), 0.8);
  EXPECT_NEAR(r.ppl() / r.ref_ppl(), 1.0, 0.05);  // random weights, 62 random tokens
}

TEST(Perplexity, BadInputGetsAClearError) {
  auto m = Model::load(kFixtures + "v3-tiny");
  auto other = Model::load(kFixtures + "v2-lite-tiny");
  PerplexityOptions po;
  po.ctx = 64;
  auto message = [&](std::vector<int32_t> ids, const Model* ref = nullptr) {
    try {
      perplexity(*m, ids, po, ref);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(stream(63, 1000)).find("fewer than one chunk of 64"), std::string::npos);
  EXPECT_NE(message({1, 2, 5000, 3}).find("token 5000 at position 2"), std::string::npos);
  po.ctx = 2048;
  EXPECT_NE(message(stream(4096, 1000)).find("max_position_embeddings 1024"), std::string::npos);
  po.ctx = 64;
  // Same vocabulary size, so no vocabulary error: v2-lite-tiny's larger context is no error either.
  EXPECT_EQ(message(stream(64, 1000), other.get()), "no error");
}

}  // namespace
}  // namespace seek::model
