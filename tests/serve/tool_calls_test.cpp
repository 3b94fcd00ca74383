// DeepSeek-V3 tool-call text → OpenAI tool_calls, and the streaming filter that keeps the call
// block out of the streamed content.
#include "serve/tool_calls.h"

#include <gtest/gtest.h>

namespace seek::serve {
namespace {

const std::string kCall1 =
    "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>";
const std::string kCall2 =
    "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜>";

TEST(ToolCalls, ParsesV3Format) {
  const auto p = parse_tool_calls("Checking.\n<｜tool▁calls▁begin｜>" + kCall1 + "\n" + kCall2 +
                                      "<｜tool▁calls▁end｜>",
                                  "abc");
  EXPECT_EQ(p.content, "Checking.");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(p.calls[1].name, "get_time");
  EXPECT_EQ(p.calls[1].arguments, "{}");
  EXPECT_NE(p.calls[0].id, p.calls[1].id);
}

TEST(ToolCalls, ParsesV31FormatAndTruncatedOutput) {
  auto p = parse_tool_calls("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"x\"}<｜tool▁call▁end｜>", "s");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "search");
  EXPECT_EQ(p.calls[0].arguments, R"({"q":"x"})");
  // Cut off inside the arguments (max_tokens): the call is still reported, verbatim.
  p = parse_tool_calls("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\": ", "s");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{\"a\":");
  // No calls: the text is the content, untouched.
  p = parse_tool_calls("  plain answer ", "s");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "  plain answer ");
}

TEST(ToolCalls, FilterHoldsBackOnlyWhatMayBeTheMarker) {
  ToolCallFilter f;
  std::string out;
  const std::string text = "Sure <｜tool▁calls▁begin｜>" + kCall1;
  for (size_t i = 0; i < text.size(); ++i) out += f.push(text.substr(i, 1));  // byte by byte
  out += f.finish();
  EXPECT_EQ(out, "Sure ");
  EXPECT_TRUE(f.in_calls());

  ToolCallFilter g;
  std::string plain;
  for (const char* piece : {"a <", "｜b", " c"}) plain += g.push(piece);
  plain += g.finish();
  EXPECT_EQ(plain, "a <｜b c");
}

TEST(ToolCalls, SystemPromptNamesEveryTool) {
  std::vector<ToolSpec> tools = {{"f1", "first", nlohmann::json::object()}, {"f2", "second", nullptr}};
  const std::string s = tools_system_prompt(tools);
  EXPECT_NE(s.find("### f1\nDescription: first"), std::string::npos);
  EXPECT_NE(s.find("### f2"), std::string::npos);
  EXPECT_NE(s.find("<｜tool▁calls▁begin｜>"), std::string::npos);
}

}  // namespace
}  // namespace seek::serve
