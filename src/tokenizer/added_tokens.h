// Added tokens (tokenizer.json "added_tokens"): strings that are cut out of the raw text before
// normalization and pre-tokenization and map straight to their id.
//
// Matching follows tokenizers' AddedVocabulary: leftmost-longest (the Aho-Corasick
// LeftmostLongest kind), first over tokens with "normalized": false on the raw text, then over
// tokens with "normalized": true on what is left (Seek supports only identity normalizers, so both
// passes see the same text). lstrip/rstrip widen a match over neighbouring White_Space.
#pragma once
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seek::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
};

struct Segment {
  std::string_view text;
  int32_t id;  // the added token's id, or -1 for plain text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Replaces `out` with the segments of `text`, in order; plain segments are never empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  // A byte trie over the token strings. Children are few per node (tokens share long prefixes
  // like "<｜"), so sorted edge lists beat 256-wide tables on memory and are fast enough.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> kids;
      int32_t token = -1;  // index into tokens_ if a token ends here
    };
    std::vector<Node> nodes{1};
    std::bitset<256> first_bytes;
    void insert(std::string_view s, int32_t token);
    // Length of the longest token that starts at text[pos], or 0; its index in *token.
    size_t longest_at(std::string_view text, size_t pos, int32_t* token) const;
  };
  void split_with(const Trie& trie, std::string_view text, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  Trie raw_, normalized_;
  bool any_normalized_ = false;
};

}  // namespace seek::tokenizer
