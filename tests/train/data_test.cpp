// BPE tokenizer training (the written tokenizer.json is pinned by loading it with Seek's HF
// tokenizer reader), token shards and the packed loader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/data.h"

using namespace seek;
using namespace seek::train;
namespace fs = std::filesystem;

namespace {
std::string text() {
  std::string t;
  for (int i = 0; i < 50; ++i)
    t += "the cat sat on the mat; the dog sat on the log " + std::to_string(i * 37) + ". Grüße, 世界!\n";
  return t;
}
}  // namespace

TEST(BpeTrainer, WritesATokenizerJsonThatRoundTrips) {
  BpeResult r = train_bpe({text()}, 330, kDeepSeekV3ChatTemplate);
  EXPECT_LE(r.vocab_size, 330);  // stops early once no pair repeats (this corpus is tiny)
  EXPECT_GT(r.merges, 20);
  const std::string dir = fs::temp_directory_path().string() + "/seek_bpe_" + std::to_string(getpid());
  fs::create_directories(dir);
  write_file_atomic(dir + "/tokenizer.json", r.tokenizer.dump());
  write_file_atomic(dir + "/tokenizer_config.json", r.tokenizer_config.dump());
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(dir);
  EXPECT_EQ(int64_t(tok.vocab_size()), r.vocab_size);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_TRUE(tok.token_to_id(kUser).has_value());
  EXPECT_TRUE(tok.token_to_id(kAssistant).has_value());
  const std::string s = "the cat sat on the log 1234. Grüße, 世界! unseen wörds ☃";
  std::vector<int32_t> ids = tok.encode(s, true);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(tok.decode(ids, true), s);
  EXPECT_LT(tok.encode("the cat sat on the mat", false).size(), 10u);  // merges compress
  // Merges are learned in frequency order: "the" is one token.
  EXPECT_EQ(tok.encode("the", false).size(), 1u);
  fs::remove_all(dir);
}

TEST(BpeTrainer, RejectsBadCorpora) {
  EXPECT_THROW(train_bpe({""}, 400, ""), Error);
  EXPECT_THROW(train_bpe({std::string("\xff\xfe")}, 400, ""), Error);
  EXPECT_THROW(train_bpe({"abc"}, 100, ""), Error);
}

TEST(Data, ShardRoundTripAndLoaderCoversEveryWindow) {
  const std::string path = fs::temp_directory_path().string() + "/seek_shard_" + std::to_string(getpid()) + ".bin";
  std::vector<int32_t> toks;
  for (int i = 0; i < 1001; ++i) toks.push_back(i);
  write_shard(path, toks, 1001);
  Shard s = Shard::open(path);
  ASSERT_EQ(s.size(), 1001);
  EXPECT_EQ(s[777], 777);
  Loader l(s, 2, 100, 7);
  EXPECT_EQ(l.windows(), 10);
  std::set<int64_t> starts;  // window w holds tokens w·100 … w·100 + 100
  for (int b = 0; b < 5; ++b) {
    model::TokenBatch tb = l.next();
    ASSERT_EQ(tb.tokens.size(), 202u);
    for (int i = 0; i < 2; ++i) {
      starts.insert(tb.tokens[size_t(i * 101)]);
      EXPECT_EQ(tb.tokens[size_t(i * 101)] % 100, 0);
      EXPECT_EQ(tb.tokens[size_t(i * 101)] + 100, tb.tokens[size_t(i * 101 + 100)]);
    }
  }
  EXPECT_EQ(starts.size(), 10u);  // one epoch visits every window once
  // A resumed loader continues with exactly the same windows.
  Loader a(s, 2, 100, 7), b(s, 2, 100, 7);
  for (int i = 0; i < 7; ++i) a.next();
  b.set_state(a.state());
  EXPECT_EQ(a.next().tokens, b.next().tokens);
  write_file_atomic(path, "garbage");
  EXPECT_THROW(Shard::open(path), Error);
  fs::remove(path);
}

TEST(Data, TrainedTokenizerCarriesDeepSeekChatTemplate) {
  BpeResult r = train_bpe({text()}, 330, kDeepSeekV3ChatTemplate);
  EXPECT_EQ(r.tokenizer_config["chat_template"].get<std::string>(), kDeepSeekV3ChatTemplate);
}
