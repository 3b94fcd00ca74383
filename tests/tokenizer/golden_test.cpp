// The DeepSeek-V3 goldens (tests/fixtures/tokenizer/README.md): ids from Hugging Face
// `tokenizers`, BOS rule from `transformers`, chat renderings from Jinja2 + transformers.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "tokenizer/chat_template.h"

namespace seek::tokenizer {
namespace {

using testing::deepseek;
using testing::read_jsonl;

std::vector<int32_t> ids_of(const nlohmann::ordered_json& j) { return j.get<std::vector<int32_t>>(); }

TEST(Golden, EncodeCases) {
  auto cases = read_jsonl("cases.jsonl");
  ASSERT_EQ(cases.size(), 65u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_EQ(deepseek().encode(c["text"].get<std::string>(), c["add_special_tokens"].get<bool>()),
              ids_of(c["ids"]));
  }
}

TEST(Golden, EncodeDecodeRoundTrip) {
  for (const auto& c : read_jsonl("cases.jsonl")) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(deepseek().decode(deepseek().encode(text, false), false), text);
    if (c["add_special_tokens"].get<bool>()) {  // the BOS decodes to its own string
      const std::string bos = deepseek().id_to_token(deepseek().bos_id());
      EXPECT_EQ(deepseek().decode(deepseek().encode(text, true), false), bos + text);
    }
  }
}

TEST(Golden, DecodeCases) {
  auto cases = read_jsonl("decode_cases.jsonl");
  ASSERT_EQ(cases.size(), 14u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_EQ(deepseek().decode(ids_of(c["ids"]), c["skip_special_tokens"].get<bool>()),
              c["text"].get<std::string>());
  }
}

TEST(Golden, ChatCases) {
  const ChatTemplate tmpl = ChatTemplate::load(testing::deepseek_dir());
  auto cases = read_jsonl("chat_cases.jsonl");
  ASSERT_EQ(cases.size(), 7u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::string rendered = tmpl.render(c["messages"], c["add_generation_prompt"].get<bool>());
    EXPECT_EQ(rendered, c["rendered"].get<std::string>());
    EXPECT_EQ(deepseek().encode(rendered, false), ids_of(c["ids"]));
  }
}

}  // namespace
}  // namespace seek::tokenizer
