// The tokenizer.json "pre_tokenizer": cuts text into pieces that BPE then encodes one by one.
//
// Supported, as Hugging Face `tokenizers` defines them:
//   Sequence   steps applied in order; each step runs on every piece the previous one produced.
//   Split      {pattern: {Regex|String}, behavior, invert}; behaviors Removed, Isolated,
//              MergedWithPrevious, MergedWithNext, Contiguous.
//   Digits     {individual_digits}: ASCII digits split off, one by one or as runs.
//   ByteLevel  {add_prefix_space, use_regex}: with use_regex, a Split on the GPT-2 pattern. It
//              must be the last step: it turns text into byte-level characters, which is
//              BPE's input alphabet, and Seek's BPE consumes raw bytes instead.
// Pieces are views into the input text except when add_prefix_space prepends a space; those
// pieces live in the caller's Workspace.
#pragma once
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"

namespace seek::tokenizer {

// The pattern ByteLevel uses when use_regex is true (GPT-2's, from the Rust source).
inline constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

class PreTokenizer {
 public:
  struct Workspace {
    std::vector<std::string_view> pieces, next;
    std::vector<Span> matches;
    std::vector<std::pair<Span, bool>> segments;  // (range, is_match) covering one piece
    std::deque<std::string> owned;  // prefixed pieces; a deque so views stay valid
  };

  // `source` names the file in error messages. A null json means "no pre-tokenizer".
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& source);

  // Replaces ws.pieces with the pieces of `text`, in order, none empty.
  void split(std::string_view text, Workspace& ws) const;

  bool has_byte_level() const { return has_byte_level_; }

 private:
  struct Step {
    std::optional<Regex> regex;  // none: ByteLevel without use_regex splits nothing
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool prefix_space = false;  // ByteLevel add_prefix_space, applied before the split
  };
  void add_json(const nlohmann::json& j, const std::string& source);
  void apply(const Step& step, std::string_view piece, Workspace& ws) const;

  std::vector<Step> steps_;
  bool has_byte_level_ = false;
};

}  // namespace seek::tokenizer
