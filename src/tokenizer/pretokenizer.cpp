#include "tokenizer/pretokenizer.h"

#include <algorithm>

#include "core/error.h"

namespace seek::tokenizer {
namespace {

SplitBehavior parse_behavior(const nlohmann::json& j, const std::string& source) {
  std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail("{}: pre_tokenizer Split has unsupported behavior {}", source, j.dump());
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& source) {
  PreTokenizer p;
  if (!j.is_null()) p.add_json(j, source);
  return p;
}

void PreTokenizer::add_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("{}: pre_tokenizer entry without a \"type\": {}", source, j.dump().substr(0, 200));
  const std::string type = j["type"].get<std::string>();
  if (has_byte_level_)
    fail("{}: pre_tokenizer {} after ByteLevel is not supported (ByteLevel must be last)", source,
         type);
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      fail("{}: pre_tokenizer Sequence without a \"pretokenizers\" array", source);
    for (const auto& step : j["pretokenizers"]) add_json(step, source);
  } else if (type == "Split") {
    Step s;
    const auto& pat = j.value("pattern", nlohmann::json());
    const std::string what = source + ": pre_tokenizer Split pattern";
    if (pat.contains("Regex") && pat["Regex"].is_string())
      s.regex = Regex::compile(pat["Regex"].get<std::string>(), what);
    else if (pat.contains("String") && pat["String"].is_string())
      s.regex = Regex::literal(pat["String"].get<std::string>(), what);
    else
      fail("{}: pre_tokenizer Split needs a pattern {{\"Regex\": ...}} or {{\"String\": ...}}",
           source);
    s.behavior = parse_behavior(j.value("behavior", nlohmann::json()), source);
    s.invert = j.value("invert", false);
    steps_.push_back(std::move(s));
  } else if (type == "Digits") {
    Step s;
    // Rust's char::is_ascii_digit; "individual" isolates each digit, otherwise digit runs
    // (Contiguous over single-digit matches gives the same pieces as isolating [0-9]+).
    bool individual = j.value("individual_digits", false);
    s.regex = Regex::compile(individual ? "[0-9]" : "[0-9]+", source + ": pre_tokenizer Digits");
    steps_.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    Step s;
    s.prefix_space = j.value("add_prefix_space", true);
    if (j.value("use_regex", true))
      s.regex = Regex::compile(kGpt2Pattern, source + ": ByteLevel regex");
    steps_.push_back(std::move(s));
    has_byte_level_ = true;
  } else {
    fail("{}: unsupported pre_tokenizer type \"{}\" (supported: Sequence, Split, Digits, "
         "ByteLevel)",
         source, type);
  }
}

void PreTokenizer::split(std::string_view text, Workspace& ws) const {
  ws.owned.clear();
  ws.pieces.clear();
  if (!text.empty()) ws.pieces.push_back(text);
  for (const Step& step : steps_) {
    ws.next.clear();
    for (std::string_view piece : ws.pieces) apply(step, piece, ws);
    std::swap(ws.pieces, ws.next);
  }
}

void PreTokenizer::apply(const Step& step, std::string_view piece, Workspace& ws) const {
  if (step.prefix_space && piece.front() != ' ') {
    std::string& prefixed = ws.owned.emplace_back();
    prefixed.reserve(piece.size() + 1);
    prefixed += ' ';
    prefixed += piece;
    piece = prefixed;
  }
  if (!step.regex) {
    ws.next.push_back(piece);
    return;
  }
  ws.matches.clear();
  step.regex->find_all(piece, ws.matches);

  // Cover the piece with alternating (gap, match) segments, as tokenizers' find_matches does;
  // `invert` swaps which of them count as matches.
  auto& segs = ws.segments;
  segs.clear();
  size_t prev = 0;
  for (Span m : ws.matches) {
    if (m.begin > prev) segs.push_back({{prev, m.begin}, step.invert});
    segs.push_back({m, !step.invert});
    prev = m.end;
  }
  if (prev < piece.size()) segs.push_back({{prev, piece.size()}, step.invert});

  auto emit = [&](Span s) {
    if (s.end > s.begin) ws.next.push_back(piece.substr(s.begin, s.end - s.begin));
  };
  switch (step.behavior) {
    case SplitBehavior::Isolated:
      for (auto& [s, is_match] : segs) emit(s);
      return;
    case SplitBehavior::Removed:
      for (auto& [s, is_match] : segs)
        if (!is_match) emit(s);
      return;
    default:
      break;
  }
  // The merging behaviors fold each match into a neighbouring segment (tokenizers' fold over
  // find_matches); `previous_match` is the previous segment visited, in visiting order.
  std::vector<std::pair<Span, bool>> merged;
  merged.reserve(segs.size());
  bool previous_match = false;
  if (step.behavior == SplitBehavior::MergedWithPrevious) {
    for (auto& [s, is_match] : segs) {
      if (is_match && !previous_match && !merged.empty()) merged.back().first.end = s.end;
      else merged.push_back({s, false});
      previous_match = is_match;
    }
  } else if (step.behavior == SplitBehavior::MergedWithNext) {
    for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
      if (it->second && !previous_match && !merged.empty()) merged.back().first.begin = it->first.begin;
      else merged.push_back({it->first, false});
      previous_match = it->second;
    }
    std::reverse(merged.begin(), merged.end());
  } else {  // Contiguous
    for (auto& [s, is_match] : segs) {
      if (is_match == previous_match && !merged.empty()) merged.back().first.end = s.end;
      else merged.push_back({s, false});
      previous_match = is_match;
    }
  }
  for (auto& [s, unused] : merged) emit(s);
}

}  // namespace seek::tokenizer
