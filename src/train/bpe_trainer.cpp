#include "train/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"

namespace seek::train {

nlohmann::json deepseek_pretokenizer() {
  auto split = [](const std::string& re) {
    return nlohmann::json{{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  return {{"type", "Sequence"},
          {"pretokenizers",
           {split("\\p{N}{1,3}"), split("[一-龥぀-ゟ゠-ヿ]+"),
            split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

namespace {

uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct Word {
  std::vector<int32_t> sym;  // current symbols (ids into `tokens`)
  int64_t count = 0;
};

nlohmann::json added(int64_t id, const std::string& s, bool special) {
  return {{"id", id}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", false}, {"special", special}};
}

}  // namespace

BpeResult train_bpe(const std::vector<std::string>& texts, int64_t vocab_size,
                    const std::string& chat_template) {
  const std::vector<std::string> head = {kBos, kEos, kPad};
  const std::vector<std::string> tail = {kUser, kAssistant, "<think>", "</think>"};
  const int64_t fixed = int64_t(head.size() + tail.size()) + 256;
  if (vocab_size < fixed) fail("tokenizer: vocab_size {} is below the minimum {} (256 bytes + {} added tokens)", vocab_size, fixed, fixed - 256);

  // Count pre-tokenized pieces.
  auto pre = tokenizer::PreTokenizer::from_json(deepseek_pretokenizer(), "bpe trainer");
  tokenizer::PreTokenizer::Workspace ws;
  std::unordered_map<std::string, int64_t> freq;
  int64_t total_bytes = 0;
  for (const std::string& t : texts) {
    if (!valid_utf8(t)) fail("tokenizer: training text is not valid UTF-8");
    total_bytes += int64_t(t.size());
    pre.split(t, ws);
    for (std::string_view p : ws.pieces) ++freq[std::string(p)];
  }
  if (total_bytes == 0) fail("tokenizer: the corpus is empty");

  // Symbols: the 256 bytes, then merges. `tokens[i]` is the byte string of symbol i.
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, char(b)));
  std::vector<Word> words;
  words.reserve(freq.size());
  std::vector<std::pair<std::string, int64_t>> sorted(freq.begin(), freq.end());
  std::sort(sorted.begin(), sorted.end());  // deterministic order
  for (auto& [s, c] : sorted) {
    Word w;
    w.count = c;
    for (unsigned char ch : s) w.sym.push_back(int32_t(ch));
    words.push_back(std::move(w));
  }
  std::unordered_map<uint64_t, int64_t> pairs;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> where;
  for (int32_t wi = 0; wi < int32_t(words.size()); ++wi) {
    const Word& w = words[size_t(wi)];
    for (size_t i = 0; i + 1 < w.sym.size(); ++i) {
      pairs[key(w.sym[i], w.sym[i + 1])] += w.count;
      where[key(w.sym[i], w.sym[i + 1])].insert(wi);
    }
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int64_t target = vocab_size - int64_t(head.size() + tail.size());
  while (int64_t(tokens.size()) < target) {
    uint64_t best = 0;
    int64_t best_n = 0;
    for (auto& [k, n] : pairs)
      if (n > best_n || (n == best_n && n > 0 && k < best)) { best = k; best_n = n; }
    if (best_n < 2) break;  // nothing repeats: a merge would not compress
    const int32_t a = int32_t(best >> 32), b = int32_t(best & 0xffffffffu), id = int32_t(tokens.size());
    tokens.push_back(tokens[size_t(a)] + tokens[size_t(b)]);
    merges.push_back({a, b});
    std::unordered_set<int32_t> ws_ = std::move(where[best]);
    where.erase(best);
    for (int32_t wi : ws_) {
      Word& w = words[size_t(wi)];
      auto& s = w.sym;
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[key(s[i], s[i + 1])] -= w.count;
      std::vector<int32_t> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) { out.push_back(id); ++i; }
        else out.push_back(s[i]);
      }
      s = std::move(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        pairs[key(s[i], s[i + 1])] += w.count;
        where[key(s[i], s[i + 1])].insert(wi);
      }
    }
    pairs.erase(best);
  }

  // tokenizer.json: ids 0..2 BOS/EOS/pad, then bytes and merges, then chat tokens.
  const int64_t off = int64_t(head.size());
  nlohmann::json vocab = nlohmann::json::object(), merge_list = nlohmann::json::array(), added_tokens = nlohmann::json::array();
  for (size_t i = 0; i < head.size(); ++i) {
    vocab[head[i]] = int64_t(i);
    added_tokens.push_back(added(int64_t(i), head[i], true));
  }
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokenizer::byte_level::encode(tokens[i])] = off + int64_t(i);
  for (auto [a, b] : merges)
    merge_list.push_back(tokenizer::byte_level::encode(tokens[size_t(a)]) + " " + tokenizer::byte_level::encode(tokens[size_t(b)]));
  int64_t next = off + int64_t(tokens.size());
  for (const std::string& s : tail) {
    vocab[s] = next;
    added_tokens.push_back(added(next, s, s != "<think>" && s != "</think>"));
    ++next;
  }
  BpeResult r;
  r.vocab_size = next;
  r.merges = int64_t(merges.size());
  r.tokenizer = {{"version", "1.0"},
                 {"truncation", nullptr},
                 {"padding", nullptr},
                 {"added_tokens", added_tokens},
                 {"normalizer", {{"type", "Sequence"}, {"normalizers", nlohmann::json::array()}}},
                 {"pre_tokenizer", deepseek_pretokenizer()},
                 {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
                 {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
                 {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                            {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                            {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", merge_list}}}};
  auto tok = [](const char* s) {
    return nlohmann::json{{"__type", "AddedToken"}, {"content", s}, {"lstrip", false}, {"normalized", true}, {"rstrip", false}, {"single_word", false}};
  };
  r.tokenizer_config = {{"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", tok(kBos)},
                        {"eos_token", tok(kEos)}, {"pad_token", tok(kEos)}, {"clean_up_tokenization_spaces", false},
                        {"legacy", true}, {"model_max_length", 131072}, {"unk_token", nullptr},
                        {"tokenizer_class", "LlamaTokenizerFast"}, {"chat_template", chat_template}};
  return r;
}

}  // namespace seek::train
