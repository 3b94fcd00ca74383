// StreamDecoder: the concatenation of push()...flush() is exactly decode(), and nothing it emits
// is a broken character.
#include <gtest/gtest.h>

#include <random>

#include "core/io.h"
#include "fixtures.h"
#include "tokenizer/stream_decoder.h"

namespace seek::tokenizer {
namespace {

using testing::deepseek;

TEST(StreamDecoder, HoldsBackASplitCharacterUntilItCompletes) {
  auto ids = deepseek().encode("🦙", false);
  ASSERT_EQ(ids.size(), 3u);  // F0 9F | A6 | 99, per the decode goldens
  StreamDecoder s(deepseek());
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.push(ids[1]), "");
  EXPECT_EQ(s.pending_bytes(), 3u);
  EXPECT_EQ(s.push(ids[2]), "🦙");
  EXPECT_EQ(s.flush(), "");
}

TEST(StreamDecoder, InvalidBytesComeOutAtOnceAndTruncatedOnesAtFlush) {
  auto ids = deepseek().encode("🦙", false);
  StreamDecoder s(deepseek());
  EXPECT_EQ(s.push(ids[1]), "\uFFFD");  // a lone continuation byte can never become valid
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.push(*deepseek().token_to_id("x")), "\uFFFDx");  // F0 9F cut off by 'x'
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.flush(), "\uFFFD");
  EXPECT_EQ(s.flush(), "");
}

TEST(StreamDecoder, SkippedSpecialsDoNotSplitCharacters) {
  // The decode golden "skipped_special_rejoins_utf8": [3574, 102, 1, 250] with skipping is 🦙.
  StreamDecoder skip(deepseek(), true), keep(deepseek(), false);
  std::string a, b;
  for (int32_t id : {3574, 102, 1, 250}) {
    a += skip.push(id);
    b += keep.push(id);
  }
  EXPECT_EQ(a + skip.flush(), "🦙");
  EXPECT_EQ(b + keep.flush(), "\uFFFD<｜end▁of▁sentence｜>\uFFFD");
}

// Random id sequences mixing: pieces of multi-byte characters (emoji, CJK extension B, ZWJ
// sequences), whole words, specials (skipped or kept), and ids with no token.
TEST(StreamDecoder, MatchesDecodeOnRandomSequences) {
  std::vector<int32_t> pool;
  for (const char* text : {"🦙😶‍🌫️👨‍👩‍👧 𠀀𪚥 鿐 ﾊﾝｶｸ", "Hello, world! 你好 ", "\xC2\x85\xEF\xBB\xBF"})
    for (int32_t id : deepseek().encode(text, false)) pool.push_back(id);
  for (int32_t id : {0, 1, 2, 128000, 128803, 128805, 128814, 128815, 129279, -1}) pool.push_back(id);
  std::mt19937 rng(42);
  for (bool skip : {false, true}) {
    for (int iter = 0; iter < 3000; ++iter) {
      std::vector<int32_t> ids(rng() % 40);
      for (auto& id : ids) id = rng() % 4 ? pool[rng() % pool.size()] : int32_t(rng() % 128900);
      StreamDecoder s(deepseek(), skip);
      std::string streamed;
      for (int32_t id : ids) {
        std::string piece = s.push(id);
        ASSERT_TRUE(valid_utf8(piece));
        ASSERT_LE(s.pending_bytes(), 3u);
        streamed += piece;
      }
      streamed += s.flush();
      ASSERT_EQ(streamed, deepseek().decode(ids, skip)) << "iteration " << iter << " skip " << skip;
    }
  }
}

}  // namespace
}  // namespace seek::tokenizer
