// The pieces of the model that training composes (transformer_backward.cpp): blocks over whole
// sequences without a KV cache (each chunk's key rows in a buffer of the call) compute exactly
// what the cache path computes, and the one embedding lookup rejects ids outside the table.
#include "model/transformer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/mtp.h"
#include "model/params.h"
#include "test_configs.h"

using namespace seek;
using namespace seek::model;

namespace {

const std::string kModel = SEEK_FIXTURES "/models/v3-tiny";

// Two whole sequences of different lengths, concatenated.
Batch two_sequences(const ModelConfig& cfg) {
  Batch b;
  for (int64_t i = 0; i < 5; ++i) b.tokens.push_back(int32_t((7 * i + 3) % cfg.vocab_size));
  for (int64_t i = 0; i < 8; ++i) b.tokens.push_back(int32_t((11 * i + 5) % cfg.vocab_size));
  b.seqs = {{0, 0, 5, true}, {1, 0, 8, true}};
  return b;
}

std::vector<int64_t> positions(const Batch& b) {
  std::vector<int64_t> p;
  for (const SeqChunk& sc : b.seqs)
    for (int64_t i = 0; i < sc.n_tokens; ++i) p.push_back(sc.start_pos + i);
  return p;
}

TEST(Transformer, WholeSequencesWithoutACacheMatchTheCachePathBitForBit) {
  auto m = Model::load(kModel);
  const ModelConfig& cfg = m->config();
  const ModelWeights& w = m->weights();
  ASSERT_FALSE(w.mtp.empty());
  const Batch batch = two_sequences(cfg);
  const int64_t T = int64_t(batch.tokens.size()), H = cfg.hidden_size;
  const RopeTables rope(cfg, positions(batch));
  for (auto attention : {ForwardOptions::Attention::Naive, ForwardOptions::Attention::Absorbed}) {
    ForwardOptions fo;
    fo.attention = attention;
    ModelConfig with_mtp = cfg;
    with_mtp.num_hidden_layers += int64_t(w.mtp.size());
    KVCache cache(with_mtp, 2, 16);
    std::vector<float> a(size_t(T * H)), b(size_t(T * H));
    embed(w.embed_tokens, batch.tokens.data(), T, a.data());
    b = a;
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
      Routing ra, rb;
      block_forward(cfg, w.layers[size_t(l)], l, a.data(), batch, rope, &cache, fo, &ra);
      block_forward(cfg, w.layers[size_t(l)], l, b.data(), batch, rope, nullptr, fo, &rb);
      ASSERT_EQ(a, b) << "layer " << l;
      ASSERT_EQ(ra.experts, rb.experts) << "layer " << l;
    }
    std::vector<float> ma(size_t(T * H)), mb(size_t(T * H));
    mtp_forward(cfg, w.mtp[0], 0, a.data(), batch, rope, &cache, fo, ma.data());
    mtp_forward(cfg, w.mtp[0], 0, b.data(), batch, rope, nullptr, fo, mb.data());
    EXPECT_EQ(ma, mb);
  }
}

// Speculative decoding verifies a draft in a two-token chunk; its first token must come out bit
// for bit as in a one-token decoding step (greedy output unchanged), with BF16 activations too.
// Sixteen heads: the chunk's absorbed attention has 32 query rows, which some kernels take down
// another path than 16.
TEST(Transformer, ATwoTokenChunkComputesItsFirstTokenAsAOneTokenStep) {
  for (ModelConfig cfg : {test::tiny_v3(64), test::tiny_v2(64)}) {
    cfg.num_attention_heads = 16;
    cfg.max_position_embeddings = 64;
    const Params p = Params::init(cfg, 0.3, 3);
    auto m = Model::borrow(cfg, p.weights());
    for (auto prec : {kernels::Precision::BF16, kernels::Precision::F32}) {
      KVCache cache(cfg, 1, 32);
      ForwardOptions fo;
      fo.precision = prec;
      std::vector<float> logits, one, two, h1, h2;
      std::vector<int32_t> prompt;
      for (int i = 0; i < 12; ++i) prompt.push_back(int32_t((5 * i + 1) % cfg.vocab_size));
      forward(*m, cache, Batch{prompt, {{0, 0, 12, false}}}, logits, fo);
      fo.last_hidden = &h1;
      forward(*m, cache, Batch{{7}, {{0, 12, 1, false}}}, one, fo);
      fo.last_hidden = &h2;
      forward(*m, cache, Batch{{7, 9}, {{0, 12, 2, true}}}, two, fo);
      two.resize(one.size());
      h2.resize(h1.size());
      EXPECT_EQ(one, two) << cfg.model_type << " precision " << int(prec);
      EXPECT_EQ(h1, h2) << cfg.model_type << " precision " << int(prec);
    }
  }
}

TEST(Transformer, WithoutACacheEveryChunkStartsAtZero) {
  auto m = Model::load(kModel);
  const ModelConfig& cfg = m->config();
  Batch batch = two_sequences(cfg);
  batch.seqs[1].start_pos = 2;
  const RopeTables rope(cfg, positions(batch));
  std::vector<float> h(batch.tokens.size() * size_t(cfg.hidden_size), 0.5f);
  try {
    block_forward(cfg, m->weights().layers[0], 0, h.data(), batch, rope, nullptr, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("position 0"), std::string::npos) << e.what();
  }
}

TEST(Transformer, ATrainingTapeNeedsWholeSequences) {
  auto m = Model::load(kModel);
  const ModelConfig& cfg = m->config();
  const Batch batch = two_sequences(cfg);
  const RopeTables rope(cfg, positions(batch));
  KVCache cache(cfg, 2, 16);
  std::vector<float> h(batch.tokens.size() * size_t(cfg.hidden_size), 0.5f);
  BlockTape tape;
  EXPECT_THROW(block_forward(cfg, m->weights().layers[0], 0, h.data(), batch, rope, &cache, {},
                             nullptr, &tape),
               Error);
}

TEST(Transformer, EmbedRejectsIdsOutsideTheTable) {
  auto m = Model::load(kModel);
  const WeightView& table = m->weights().embed_tokens;
  std::vector<float> h(size_t(2 * table.cols));
  for (int32_t bad : {-1, int32_t(table.rows)}) {
    const int32_t ids[2] = {0, bad};
    try {
      embed(table, ids, 2, h.data());
      FAIL() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), fmt::format("token id {} is outside the vocabulary (size {})", bad, table.rows));
    }
  }
}

TEST(Transformer, EmbedBackwardScatterAddsIntoTheRowsOfTheIds) {
  const int32_t ids[3] = {2, 0, 2};
  const float dh[6] = {1, 2, 3, 4, 5, 6};  // [3, 2]
  std::vector<float> g(6, 1.0f);           // [3, 2]
  embed_backward(ids, 3, 2, dh, g.data());
  EXPECT_EQ(g, (std::vector<float>{4, 5, 1, 1, 7, 9}));
  embed_backward(ids, 3, 2, dh, nullptr);  // no gradient wanted: nothing to do
}

}  // namespace
