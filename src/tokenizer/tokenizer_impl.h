// Internal: the state behind a Tokenizer, shared by tokenizer.cpp (encode/decode) and
// tokenizer_load.cpp (building it from tokenizer.json).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace seek::tokenizer {

struct Tokenizer::Impl {
  // Per id (0 .. highest id). An id may have no token: vocabularies can have holes.
  std::vector<std::string> tokens;  // raw token strings; added-token content wins over vocab
  std::vector<uint8_t> has_token, special;
  // What each id decodes to, in one arena: bytes of id i are [byte_off[i], byte_off[i+1]).
  std::string bytes;
  std::vector<uint32_t> byte_off;

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> token_ids;

  AddedTokenMatcher added;
  PreTokenizer pre;
  Bpe bpe;

  std::vector<int32_t> prefix_ids, suffix_ids;  // added around the text by add_special_tokens
  int32_t bos = -1, eos = -1;
};

}  // namespace seek::tokenizer
