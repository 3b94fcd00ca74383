// The one text path of generated tokens: ids → UTF-8 → stop strings → <think> split, and the
// EOS list, with the real DeepSeek-V3 tokenizer.
#include "generate/text_pipeline.h"

#include <gtest/gtest.h>

#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace seek::generate {
namespace {

const tokenizer::Tokenizer& tok() {
  static const auto t =
      tokenizer::Tokenizer::load(std::string(SEEK_FIXTURES) + "/tokenizer/deepseek-v3");
  return t;
}

struct Out {
  std::string reasoning, answer;
  int alternations = 0;  // kind changes between consecutive pieces
};

// Pushes the ids of `text` one at a time, then finishes; collects the pieces by kind.
Out run(TextPipeline& p, const std::string& text) {
  std::vector<TextPiece> pieces;
  for (int32_t id : tok().encode(text, false)) p.push(id, pieces);
  p.finish(pieces);
  Out o;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_FALSE(pieces[i].text.empty());
    (pieces[i].reasoning ? o.reasoning : o.answer) += pieces[i].text;
    if (i > 0 && pieces[i].reasoning != pieces[i - 1].reasoning) ++o.alternations;
  }
  return o;
}

TEST(TextPipeline, SplitsReasoningAndStopsAtAStopString) {
  const std::string text = "<think>\nLet me see: 2 + 2.\n</think>\n\nIt is 4 — 四. END and more";
  TextPipeline p(tok(), {"END"}, /*split_reasoning=*/true, /*starts_in_thinking=*/false);
  const Out o = run(p, text);
  EXPECT_EQ(o.reasoning, "Let me see: 2 + 2.");
  EXPECT_EQ(o.answer, "It is 4 — 四. ");
  EXPECT_EQ(o.alternations, 1);
  EXPECT_TRUE(p.stopped());
  EXPECT_EQ(p.stop_string(), "END");
}

TEST(TextPipeline, WithoutSplittingEverythingIsAnswerText) {
  const std::string text = "<think>\nhm\n</think>\n\nIt is 4 — 四.";
  TextPipeline p(tok(), {}, /*split_reasoning=*/false, false);
  const Out o = run(p, text);
  EXPECT_EQ(o.answer, text);
  EXPECT_TRUE(o.reasoning.empty());
  EXPECT_FALSE(p.stopped());
  EXPECT_FALSE(p.in_reasoning());
}

TEST(TextPipeline, StartsInThinkingAndHoldsAPossibleStopPrefix) {
  TextPipeline p(tok(), {"STOP"}, true, /*starts_in_thinking=*/true);
  std::vector<TextPiece> pieces;
  for (int32_t id : tok().encode("thinking", false)) p.push(id, pieces);
  EXPECT_TRUE(p.in_reasoning());
  pieces.clear();
  // "ST" may begin "STOP": held until the end says it did not.
  for (int32_t id : tok().encode("</think>\n\nST", false)) p.push(id, pieces);
  EXPECT_FALSE(p.in_reasoning());
  std::string answer;
  for (auto& piece : pieces)
    if (!piece.reasoning) answer += piece.text;
  EXPECT_EQ(answer.find("ST"), std::string::npos) << answer;
  pieces.clear();
  p.finish(pieces);
  ASSERT_FALSE(pieces.empty());
  EXPECT_EQ(pieces.back().text, "ST");
  EXPECT_FALSE(pieces.back().reasoning);
}

TEST(TextPipeline, EosIdsAreSortedUniqueAndInsideTheVocabulary) {
  model::ModelConfig cfg;
  cfg.vocab_size = 10;
  cfg.eos_token_ids = {7, 12, 3, 7, -1};
  EXPECT_EQ(eos_ids(cfg, nullptr), (std::vector<int32_t>{3, 7}));
  ASSERT_EQ(tok().eos_id(), 1);
  EXPECT_EQ(eos_ids(cfg, &tok()), (std::vector<int32_t>{1, 3, 7}));
  cfg.vocab_size = 1;  // the tokenizer's EOS is outside a 1-token vocabulary
  EXPECT_TRUE(eos_ids(cfg, &tok()).empty());
}

TEST(TextPipeline, FinishReasonNames) {
  EXPECT_STREQ(finish_reason_name(FinishReason::Stop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::Length), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::Cancelled), "cancelled");
  EXPECT_STREQ(finish_reason_name(FinishReason::Timeout), "timeout");
  EXPECT_STREQ(finish_reason_name(FinishReason::Shutdown), "shutdown");
  EXPECT_STREQ(finish_reason_name(FinishReason::Error), "error");
}

}  // namespace
}  // namespace seek::generate
