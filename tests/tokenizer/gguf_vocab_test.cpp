// The DeepSeek-V3 tokenizer written to GGUF metadata and read back encodes, decodes and renders
// its chat template exactly as the tokenizer.json original does, on every golden.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "fixtures.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"

namespace seek::tokenizer {
namespace {

using testing::deepseek;
using testing::deepseek_dir;
using testing::read_jsonl;

std::vector<int32_t> ids_of(const nlohmann::ordered_json& j) { return j.get<std::vector<int32_t>>(); }

// The V3 tokenizer exported once per test binary, padded to 129280 ids like the release; the
// file is removed when the binary exits.
struct TempGguf {
  std::string path;
  ~TempGguf() { std::filesystem::remove(path); }
};

const std::string& gguf_path() {
  static const TempGguf file = [] {
    const std::string p = (std::filesystem::temp_directory_path() /
                           ("seek_vocab_test." + std::to_string(::getpid()) + ".gguf")).string();
    GgufWriter w;
    add_tokenizer_to_gguf(deepseek_dir(), 129280, w);
    w.write(p);
    return TempGguf{p};
  }();
  return file.path;
}

const Tokenizer& from_gguf() {
  static const Tokenizer tok = Tokenizer::load(gguf_path());
  return tok;
}

TEST(GgufVocab, Metadata) {
  const GgufFile f = GgufFile::open(gguf_path());
  EXPECT_EQ(f.find("tokenizer.ggml.model")->s, "gpt2");
  EXPECT_EQ(f.find("tokenizer.ggml.pre")->s, "deepseek-v3");
  const GgufValue& tokens = *f.find("tokenizer.ggml.tokens");
  const GgufValue& types = *f.find("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.strs.size(), 129280u);
  ASSERT_EQ(types.ints.size(), 129280u);
  EXPECT_EQ(tokens.strs[0], "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(types.ints[0], 3);  // control
  EXPECT_EQ(types.ints[1000], 1);
  EXPECT_EQ(tokens.strs[129279], "[PAD129279]");
  EXPECT_EQ(types.ints[129279], 5);  // unused
  EXPECT_EQ(f.find("tokenizer.ggml.merges")->strs.size(), 127741u);
  EXPECT_EQ(f.find("tokenizer.ggml.bos_token_id")->i, 0);
  EXPECT_EQ(f.find("tokenizer.ggml.eos_token_id")->i, 1);
  EXPECT_EQ(f.find("tokenizer.ggml.add_bos_token")->i, 1);
  EXPECT_EQ(f.find("tokenizer.ggml.add_eos_token")->i, 0);
  EXPECT_EQ(f.find("tokenizer.chat_template")->s, ChatTemplate::load(deepseek_dir()).source());
}

TEST(GgufVocab, SameTokensAndSpecialFlags) {
  const Tokenizer& g = from_gguf();
  EXPECT_EQ(g.bos_id(), deepseek().bos_id());
  EXPECT_EQ(g.eos_id(), deepseek().eos_id());
  for (int32_t id = 0; id < int32_t(deepseek().vocab_size()); ++id) {
    ASSERT_EQ(g.has_token(id), deepseek().has_token(id)) << id;
    ASSERT_EQ(g.id_to_token(id), deepseek().id_to_token(id)) << id;
    ASSERT_EQ(g.is_special(id), deepseek().is_special(id)) << id;
  }
}

TEST(GgufVocab, EncodesEveryGoldenLikeTokenizerJson) {
  auto cases = read_jsonl("cases.jsonl");
  ASSERT_EQ(cases.size(), 65u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_EQ(from_gguf().encode(c["text"].get<std::string>(), c["add_special_tokens"].get<bool>()),
              ids_of(c["ids"]));
  }
  for (const auto& c : read_jsonl("decode_cases.jsonl")) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_EQ(from_gguf().decode(ids_of(c["ids"]), c["skip_special_tokens"].get<bool>()),
              c["text"].get<std::string>());
  }
}

TEST(GgufVocab, ChatTemplateFromGgufRendersTheGoldens) {
  const ChatTemplate tmpl = ChatTemplate::load(gguf_path());
  for (const auto& c : read_jsonl("chat_cases.jsonl")) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::string rendered = tmpl.render(c["messages"], c["add_generation_prompt"].get<bool>());
    EXPECT_EQ(rendered, c["rendered"].get<std::string>());
    EXPECT_EQ(from_gguf().encode(rendered, false), ids_of(c["ids"]));
  }
}

TEST(GgufVocab, UnsupportedMetadataIsAClearError) {
  GgufHeader h;
  auto set = [&](const std::string& k, GgufValue v) {
    h.by_key[k] = h.metadata.size();
    h.metadata.emplace_back(k, std::move(v));
  };
  auto error_of = [&] {
    try {
      tokenizer_from_gguf(h, "x.gguf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of().find("tokenizer.ggml.model"), std::string::npos);
  set("tokenizer.ggml.model", GgufValue::str("llama"));
  EXPECT_NE(error_of().find("\"llama\" is not supported"), std::string::npos);
  h = {};
  set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  set("tokenizer.ggml.tokens", GgufValue::str_array({"a", "b", "ab"}));
  set("tokenizer.ggml.merges", GgufValue::str_array({"a b"}));
  set("tokenizer.ggml.pre", GgufValue::str("qwen2"));
  EXPECT_NE(error_of().find("tokenizer.ggml.pre \"qwen2\""), std::string::npos) << error_of();
}

// The DeepSeek-LLM (V2) pre-tokenizer is built from its regex list; a GGUF naming it loads.
TEST(GgufVocab, DeepseekLlmPreTokenizerLoads) {
  GgufHeader h;
  auto set = [&](const std::string& k, GgufValue v) {
    h.by_key[k] = h.metadata.size();
    h.metadata.emplace_back(k, std::move(v));
  };
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level::encode(std::string(1, char(b))));
  set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  set("tokenizer.ggml.tokens", GgufValue::str_array(tokens));
  set("tokenizer.ggml.merges", GgufValue::str_array({}));
  set("tokenizer.ggml.pre", GgufValue::str("deepseek-llm"));
  const Tokenizer t = tokenizer_from_gguf(h, "v2.gguf");
  EXPECT_EQ(t.decode(t.encode("Hello 123", false), false), "Hello 123");
}

}  // namespace
}  // namespace seek::tokenizer
