// Tokenizer behaviour beyond the DeepSeek goldens: a tiny hand-built byte-level BPE pins each
// pipeline feature (merge forms, ranks, ignore_merges, added-token matching, post-processors,
// Split behaviors, regex flavour), then load errors, long inputs and threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "core/error.h"
#include "fixtures.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/regex.h"

namespace seek::tokenizer {
namespace {

using nlohmann::json;

// Byte b has id b; merged tokens get ids from 256 in merge order.
//   he=256 ll=257 hell=258 hello=259 Ġw=260 or=261 Ġwor=262 ld=263 aa=264
json tiny_tokenizer(bool array_merges = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::encode(std::string(1, char(b)))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"a", "a"}};
  json m = json::array();
  int next = 256;
  for (auto& [a, b] : merges) {
    vocab[a + b] = next++;
    m.push_back(array_merges ? json::array({a, b}) : json(a + " " + b));
  }
  vocab["xyz"] = 400;  // reachable only through ignore_merges: there is no merge for it
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"added_tokens", json::array()}};
}

json added(int id, const std::string& content, bool special = true, bool normalized = false) {
  return {{"id", id}, {"content", content}, {"special", special}, {"normalized", normalized},
          {"lstrip", false}, {"rstrip", false}, {"single_word", false}};
}

Tokenizer make(const json& j, const std::string& config = "") { return Tokenizer::from_json_text(j.dump(), config, "tiny.json"); }

using Ids = std::vector<int32_t>;

TEST(Bpe, MergesByRankInBothMergeForms) {
  for (bool array_form : {false, true}) {
    Tokenizer t = make(tiny_tokenizer(array_form));
    EXPECT_EQ(t.encode("hello world", false), (Ids{259, 262, 263})) << array_form;
    EXPECT_EQ(t.decode(t.encode("hello world", false), false), "hello world");
  }
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  Tokenizer t = make(tiny_tokenizer());
  EXPECT_EQ(t.encode("aaa", false), (Ids{264, 'a'}));
  EXPECT_EQ(t.encode("aaaa", false), (Ids{264, 264}));
}

TEST(Bpe, IgnoreMergesTakesWholeVocabPieces) {
  json j = tiny_tokenizer();
  EXPECT_EQ(make(j).encode("xyz", false), (Ids{'x', 'y', 'z'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(make(j).encode("xyz", false), (Ids{400}));
  EXPECT_EQ(make(j).encode("hello", false), (Ids{259}));
}

TEST(Bpe, NaiveAndHeapMergeLoopsAgree) {
  // A random merge grammar over a 4-symbol alphabet, deep enough that merges build on merges.
  std::mt19937 rng(7);
  MergeTable table;
  int32_t next = 4;
  for (int32_t rank = 0; rank < 300; ++rank) {
    int32_t a = int32_t(rng() % uint32_t(next)), b = int32_t(rng() % uint32_t(next));
    if (table.find(a, b)) continue;
    table.insert(a, b, rank, next++);
  }
  Bpe bpe(Bpe::Config{}, std::move(table));
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<int32_t> x(rng() % 120);
    for (auto& s : x) s = int32_t(rng() % 4);
    std::vector<int32_t> y = x;
    bpe.merge_naive(x);
    bpe.merge_heap(y);
    ASSERT_EQ(x, y) << "iteration " << iter;
  }
}

TEST(AddedTokens, LeftmostThenLongest) {
  json j = tiny_tokenizer();
  j["added_tokens"] = {added(300, "<a>"), added(301, "<a><b>"), added(302, "ab"), added(303, "bc")};
  Tokenizer t = make(j);
  EXPECT_EQ(t.encode("x<a><b>y<a>", false), (Ids{'x', 301, 'y', 300}));
  EXPECT_EQ(t.encode("abc", false), (Ids{302, 'c'}));  // "ab" starts first, "bc" never gets a chance
  EXPECT_EQ(t.encode("<a", false), (Ids{'<', 'a'}));
}

TEST(AddedTokens, NonNormalizedTokensAreMatchedFirst) {
  // tokenizers splits on "normalized": false tokens before looking for "normalized": true ones,
  // so "cd" wins over the earlier-starting "abc".
  json j = tiny_tokenizer();
  j["added_tokens"] = {added(300, "abc", false, true), added(301, "cd", false, false)};
  EXPECT_EQ(make(j).encode("abcd", false), (Ids{'a', 'b', 301}));
  EXPECT_EQ(make(j).encode("abcx", false), (Ids{300, 'x'}));
}

TEST(AddedTokens, LstripAndRstripSwallowWhiteSpace) {
  json j = tiny_tokenizer();
  json tok = added(300, "<m>");
  tok["lstrip"] = true;
  tok["rstrip"] = true;
  j["added_tokens"] = {tok};
  // U+3000 is White_Space, so it is swallowed too.
  EXPECT_EQ(make(j).encode("a \xE3\x80\x80<m>\n b", false), (Ids{'a', 300, 'b'}));
}

TEST(AddedTokens, DecodeSkipsOnlySpecialOnes) {
  json j = tiny_tokenizer();
  j["added_tokens"] = {added(300, "<s>", true), added(301, "<tool>", false)};
  Tokenizer t = make(j);
  EXPECT_EQ(t.decode(Ids{300, 259, 301}, true), "hello<tool>");
  EXPECT_EQ(t.decode(Ids{300, 259, 301}, false), "<s>hello<tool>");
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(301));
  EXPECT_EQ(t.vocab_size(), 401u);
  EXPECT_FALSE(t.has_token(350));
  EXPECT_EQ(t.id_to_token(350), "");
  EXPECT_EQ(t.decode(Ids{350, -5, 100000, 259}, false), "hello");
}

TEST(PostProcessor, TemplateProcessingAndConfigOverride) {
  json j = tiny_tokenizer();
  j["added_tokens"] = {added(300, "<s>"), added(301, "</s>")};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
                          {"</s>", {{"id", "</s>"}, {"ids", {301}}, {"tokens", {"</s>"}}}}}}};
  EXPECT_EQ(make(j).encode("hello", true), (Ids{300, 259, 301}));
  EXPECT_EQ(make(j).encode("hello", false), (Ids{259}));
  // transformers' LlamaTokenizerFast: add_bos_token/add_eos_token in the config decide.
  Tokenizer t = make(j, R"({"add_bos_token": false, "add_eos_token": true, "bos_token": "<s>",
                           "eos_token": {"content": "</s>", "lstrip": false}})");
  EXPECT_EQ(t.encode("hello", true), (Ids{259, 301}));
  EXPECT_EQ(t.bos_id(), 300);
  EXPECT_EQ(t.eos_id(), 301);
}

std::vector<std::string> split(const json& pre, std::string_view text) {
  PreTokenizer p = PreTokenizer::from_json(pre, "test");
  PreTokenizer::Workspace ws;
  p.split(text, ws);
  return {ws.pieces.begin(), ws.pieces.end()};
}

TEST(PreTokenizer, SplitBehaviors) {
  auto dash = [](const char* behavior, bool invert = false) {
    return json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split(dash("Isolated"), "a-b--c"), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(split(dash("Removed"), "a-b--c"), (V{"a", "b", "c"}));
  EXPECT_EQ(split(dash("MergedWithPrevious"), "a-b--c"), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(split(dash("MergedWithNext"), "a-b--c"), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(split(dash("Contiguous"), "a-b--c"), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(split(dash("Removed", true), "a-b--c"), (V{"-", "-", "-"}));
  EXPECT_EQ(split({{"type", "Digits"}, {"individual_digits", true}}, "a12b"), (V{"a", "1", "2", "b"}));
  EXPECT_EQ(split({{"type", "Digits"}, {"individual_digits", false}}, "a12b"), (V{"a", "12", "b"}));
  // Llama 3's pattern: a case-insensitive group, digit triples, and \s in and out of classes.
  const json llama3 = {{"type", "Split"},
                       {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                                              " ?[^\\s\\p{L}\\p{N}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}}},
                       {"behavior", "Isolated"}};
  EXPECT_EQ(split(llama3, "I'M 1234 fine\n\n"), (V{"I", "'M", " ", "123", "4", " fine", "\n\n"}));
  // ByteLevel add_prefix_space: a space is prepended, then GPT-2's regex splits.
  EXPECT_EQ(split({{"type", "ByteLevel"}, {"add_prefix_space", true}}, "hi there's"), (V{" hi", " there", "'s"}));
}

TEST(Regex, WhiteSpaceIsUnicodeWhiteSpaceAsInOniguruma) {
  // PCRE2's own \s would also match U+180E; Oniguruma's (White_Space) matches U+0085 but not
  // U+FEFF, U+200B, U+180E or the U+001C..U+001F separators.
  Regex re = Regex::compile("\\s+", "test");
  const std::string text = "a\xE1\xA0\x8E" "b\xC2\x85" "c\xEF\xBB\xBF" "d\xE2\x80\x8B" "e\x1C" "f \t" "g\xE3\x80\x80";
  std::vector<Span> m;
  re.find_all(text, m);
  std::vector<std::string> got;
  for (Span s : m) got.push_back(text.substr(s.begin, s.end - s.begin));
  EXPECT_EQ(got, (std::vector<std::string>{"\xC2\x85", " \t", "\xE3\x80\x80"}));
  EXPECT_EQ(translate_oniguruma("[^\\s\\p{L}]\\S"),
            "[^\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
            "\\x{205F}\\x{3000}\\p{L}][^\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
            "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]");
  EXPECT_EQ(translate_oniguruma("[\\]\\s]\\\\s"), "[\\]\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
                                                  "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]\\\\s");
}

void expect_load_error(const std::string& json_text, const std::string& needle, const std::string& config = "") {
  try {
    Tokenizer::from_json_text(json_text, config, "bad/tokenizer.json");
    ADD_FAILURE() << "no error, expected one mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LoadErrors, NameTheFileAndTheField) {
  EXPECT_THROW(Tokenizer::load("/nonexistent/model"), Error);
  try {
    Tokenizer::load("/nonexistent/model");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model/tokenizer.json"), std::string::npos) << e.what();
  }
  expect_load_error("{\"model\": ", "bad/tokenizer.json");
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    json j = tiny_tokenizer();
    j["model"]["type"] = type;
    expect_load_error(j.dump(), type);
  }
  json j = tiny_tokenizer();
  j["model"].erase("vocab");
  expect_load_error(j.dump(), "model.vocab");
  j = tiny_tokenizer();
  j["normalizer"] = {{"type", "NFC"}};
  expect_load_error(j.dump(), "NFC");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_load_error(j.dump(), "Metaspace");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,3}"}}}, {"behavior", "Isolated"}};
  expect_load_error(j.dump(), "no ByteLevel");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_load_error(j.dump(), "cannot compile regex");
  j = tiny_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_load_error(j.dump(), "decoder");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("q zz");
  expect_load_error(j.dump(), "model.merges[9]");
  j = tiny_tokenizer();
  j["added_tokens"] = {added(300, "<s>")};
  j["added_tokens"][0]["special"] = "yes";
  expect_load_error(j.dump(), "bad/tokenizer.json: [json.exception.type_error");
  expect_load_error(tiny_tokenizer().dump(), "bad/tokenizer_config.json", "{not json");
  expect_load_error(tiny_tokenizer().dump(), "bos_token", R"({"add_bos_token": true, "bos_token": "<nope>"})");
}

TEST(Encode, InvalidUtf8IsRejected) {
  EXPECT_THROW(testing::deepseek().encode("ok \xFF bad", false), Error);
  EXPECT_THROW(testing::deepseek().encode("\xED\xA0\x80", false), Error);  // a surrogate
  EXPECT_THROW(testing::deepseek().encode("\xF0\x9F\xA6", false), Error);  // truncated
}

TEST(DeepSeek, VocabularyFacts) {
  const Tokenizer& t = testing::deepseek();
  EXPECT_EQ(t.vocab_size(), 128815u);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.token_to_id("<｜User｜>"), 128803);
  EXPECT_EQ(t.token_to_id("<|EOT|>"), 128805);
  EXPECT_EQ(t.token_to_id("<think>"), std::nullopt);
  EXPECT_TRUE(t.is_special(1));
  EXPECT_FALSE(t.is_special(128803));
  EXPECT_EQ(t.id_to_token(*t.token_to_id("Ġthe")), "Ġthe");
  EXPECT_EQ(t.id_to_bytes(*t.token_to_id("Ġthe")), " the");
  EXPECT_EQ(t.id_to_token(128815), "");
}

TEST(DeepSeek, LongRunsRoundTrip) {
  // Pieces far longer than the naive-merge limit, and regex matches over a megabyte.
  const Tokenizer& t = testing::deepseek();
  std::string emoji;
  for (int i = 0; i < 20000; ++i) emoji += "🦙";
  for (const std::string& text : {std::string(1 << 20, ' '), std::string(200000, 'a'), std::string(100000, '7'),
                                  std::string(50000, '\n') + "x", emoji}) {
    auto ids = t.encode(text, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t.decode(ids, false), text);
  }
}

TEST(DeepSeek, LiteralSpansKeepOrdinaryTextAndTurnMarkersIntoText) {
  const Tokenizer& t = testing::deepseek();
  // Text without added-token strings: the same ids whatever spans are literal.
  std::mt19937 rng{7};
  for (const auto& c : testing::read_jsonl("cases.jsonl")) {
    const std::string text = c["text"].get<std::string>();
    if (text.find("<｜") != std::string::npos || text.find("<|") != std::string::npos || text.empty()) continue;
    EncodeOptions o;
    size_t a = rng() % text.size(), b = rng() % text.size();
    if (a > b) std::swap(a, b);
    while (a > 0 && (uint8_t(text[a]) & 0xC0) == 0x80) --a;
    while (b < text.size() && (uint8_t(text[b]) & 0xC0) == 0x80) ++b;
    o.literal = {{a, b}};
    EXPECT_EQ(t.encode(text, o), t.encode(text, false)) << text;
  }
  // Inside a span, a marker is its characters; outside, it is the token.
  const std::string text = "<｜User｜>say <｜Assistant｜> please<｜Assistant｜>";
  const size_t from = std::string("<｜User｜>").size(), to = text.rfind("<｜Assistant｜>");
  EncodeOptions o;
  o.literal = {{from, to}};
  const Ids ids = t.encode(text, o);
  const int32_t user = *t.token_to_id("<｜User｜>"), assistant = *t.token_to_id("<｜Assistant｜>");
  EXPECT_EQ(ids.front(), user);
  EXPECT_EQ(ids.back(), assistant);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), assistant), 1);
  EXPECT_EQ(t.decode(ids, false), text);
  o.literal = {{to, to + 1}, {from, to}};
  EXPECT_THROW(t.encode(text, o), Error);  // spans out of order
}

TEST(DeepSeek, MaxTokensStopsEarly) {
  const Tokenizer& t = testing::deepseek();
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "token " + std::to_string(i % 97) + "\n";
  const Ids all = t.encode(text, false);
  EncodeOptions o;
  o.max_tokens = 1000;
  const Ids some = t.encode(text, o);
  EXPECT_GT(some.size(), 1000u);
  EXPECT_LT(some.size(), all.size() / 10);
  EXPECT_TRUE(std::equal(some.begin(), some.begin() + 1000, all.begin()));
  // Under the limit: exactly encode().
  o.max_tokens = all.size();
  EXPECT_EQ(t.encode(text, o), all);
  // A run of spaces has long tokens: the prefix count cannot decide, the whole text is encoded.
  const std::string spaces(1 << 16, ' ');
  o.max_tokens = 600;
  EXPECT_EQ(t.encode(spaces, o), t.encode(spaces, false));
}

TEST(DeepSeek, EncodeIsThreadSafe) {
  const Tokenizer& t = testing::deepseek();
  auto cases = testing::read_jsonl("cases.jsonl");
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c["text"].get<std::string>());
  std::vector<Ids> expected;
  for (const auto& s : texts) expected.push_back(t.encode(s, false));
  auto work = [&](int seed, int* mismatches) {
    std::mt19937 rng{uint32_t(seed)};
    for (int i = 0; i < 3000; ++i) {
      size_t k = rng() % texts.size();
      if (t.encode(texts[k], false) != expected[k]) ++*mismatches;
    }
  };
  int m1 = 0, m2 = 0;
  std::thread a(work, 1, &m1), b(work, 2, &m2);
  a.join();
  b.join();
  EXPECT_EQ(m1 + m2, 0);
}

}  // namespace
}  // namespace seek::tokenizer
