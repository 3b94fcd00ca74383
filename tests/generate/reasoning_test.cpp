#include "generate/reasoning.h"

#include <gtest/gtest.h>

namespace seek::generate {
namespace {

struct Split {
  std::string reasoning, content;
  std::vector<TextPiece> pieces;
};

Split run(bool starts_in_thinking, const std::vector<std::string>& chunks) {
  ReasoningSplitter s(starts_in_thinking);
  Split r;
  auto take = [&](std::vector<TextPiece> ps) {
    for (size_t k = 1; k < ps.size(); ++k)  // one call's pieces are merged: kinds alternate
      EXPECT_NE(ps[k].reasoning, ps[k - 1].reasoning);
    for (auto& p : ps) {
      EXPECT_FALSE(p.text.empty());
      (p.reasoning ? r.reasoning : r.content) += p.text;
      r.pieces.push_back(std::move(p));
    }
  };
  for (const auto& c : chunks) take(s.push(c));
  take(s.finish());
  return r;
}

// Every way to cut `text` into two or three pieces, and byte by byte, gives `want`.
void expect_all_splits(bool starts, const std::string& text, const std::string& reasoning,
                       const std::string& content) {
  for (size_t i = 0; i <= text.size(); ++i)
    for (size_t j = i; j <= text.size(); ++j) {
      Split r = run(starts, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_EQ(r.reasoning, reasoning) << "cuts " << i << "," << j << " in " << text;
      ASSERT_EQ(r.content, content) << "cuts " << i << "," << j << " in " << text;
    }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  Split r = run(starts, bytes);
  EXPECT_EQ(r.reasoning, reasoning);
  EXPECT_EQ(r.content, content);
}

TEST(ReasoningSplitter, ThinkBlockThenAnswer) {
  expect_all_splits(false, "<think>\nLet me add: 2+2.\n</think>\n\nThe answer is 4.",
                    "Let me add: 2+2.", "The answer is 4.");
}

TEST(ReasoningSplitter, StartsInThinkingForR1Prompts) {
  expect_all_splits(true, "Okay, so\n\nthe user asks.\n</think>\n\n**4**\n", "Okay, so\n\nthe user asks.",
                    "**4**\n");
  expect_all_splits(true, "\n</think>\n\nhi", "", "hi");
}

TEST(ReasoningSplitter, NoTagsIsAllContentUntouched) {
  expect_all_splits(false, "\n\nHello there", "", "\n\nHello there");
  expect_all_splits(false, "Hello <think> world </think>", "", "Hello <think> world </think>");
  expect_all_splits(false, "<thinking>not a tag", "", "<thinking>not a tag");
  expect_all_splits(false, "<thi", "", "<thi");
}

TEST(ReasoningSplitter, TagsOnlyOnceAndWhitespaceBeforeOpen) {
  expect_all_splits(false, "  \n<think>a</think>b</think><think>c", "a", "b</think><think>c");
}

TEST(ReasoningSplitter, UnterminatedReasoning) {
  expect_all_splits(false, "<think>\nstill thinking\n\n", "still thinking", "");
  expect_all_splits(false, "<think>abc</thi", "abc</thi", "");
  expect_all_splits(true, "abc\n</thin", "abc\n</thin", "");
}

TEST(ReasoningSplitter, NewlinesInsideReasoningAreKept) {
  expect_all_splits(false, "<think>a\n\nb\n</think>c\n\nd", "a\n\nb", "c\n\nd");
}

TEST(ReasoningSplitter, Utf8AndStateQuery) {
  ReasoningSplitter s;
  EXPECT_FALSE(s.in_reasoning());
  auto p = s.push("<think>思考");
  EXPECT_TRUE(s.in_reasoning());
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (TextPiece{"思考", true}));
  p = s.push("</think>答案");
  EXPECT_FALSE(s.in_reasoning());
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (TextPiece{"答案", false}));
}

TEST(ReasoningSplitter, PromptOpensThinking) {
  EXPECT_TRUE(prompt_opens_thinking("<｜User｜>hi<｜Assistant｜><think>\n"));
  EXPECT_TRUE(prompt_opens_thinking("...<think>"));
  EXPECT_FALSE(prompt_opens_thinking("<｜User｜>hi<｜Assistant｜>"));
  EXPECT_FALSE(prompt_opens_thinking("<think>x</think>"));
  EXPECT_FALSE(prompt_opens_thinking(""));
}

}  // namespace
}  // namespace seek::generate
