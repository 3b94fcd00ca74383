#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace seek::tokenizer {

void AddedTokenMatcher::Trie::insert(std::string_view s, int32_t token) {
  int32_t node = 0;
  for (char ch : s) {
    uint8_t b = uint8_t(ch);
    auto& kids = nodes[node].kids;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::pair<uint8_t, int32_t>(b, -1));
    if (it != kids.end() && it->first == b) {
      node = it->second;
    } else {
      int32_t child = int32_t(nodes.size());
      kids.insert(it, {b, child});
      nodes.emplace_back();  // invalidates `kids`; not used again in this iteration
      node = child;
    }
  }
  // Two added tokens with the same content: the later one wins, as in a map insert.
  nodes[node].token = token;
  first_bytes.set(uint8_t(s[0]));
}

size_t AddedTokenMatcher::Trie::longest_at(std::string_view text, size_t pos, int32_t* token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& kids = nodes[node].kids;
    uint8_t b = uint8_t(text[i]);
    auto it = std::lower_bound(kids.begin(), kids.end(), std::pair<uint8_t, int32_t>(b, -1));
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token >= 0) {
      best = i + 1 - pos;
      *token = nodes[node].token;
    }
  }
  return best;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.content.empty()) continue;
    (t.normalized ? normalized_ : raw_).insert(t.content, int32_t(i));
    any_normalized_ |= t.normalized;
  }
}

namespace {

// Start of the White_Space run that ends at `end` (Rust's char::is_whitespace), not before `floor`.
size_t skip_space_back(std::string_view s, size_t end, size_t floor) {
  size_t i = end;
  while (i > floor) {
    size_t j = i - 1;
    while (j > floor && (uint8_t(s[j]) & 0xC0) == 0x80) --j;
    size_t k = j;
    if (!unicode::is_white_space(unicode::next_code_point(s, k))) break;
    i = j;
  }
  return i;
}

size_t skip_space_forward(std::string_view s, size_t i) {
  while (i < s.size()) {
    size_t k = i;
    if (!unicode::is_white_space(unicode::next_code_point(s, k))) break;
    i = k;
  }
  return i;
}

}  // namespace

void AddedTokenMatcher::split_with(const Trie& trie, std::string_view text,
                                   std::vector<Segment>& out) const {
  size_t done = 0;  // text[0, done) is already in `out`
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (!trie.first_bytes.test(uint8_t(text[pos]))) continue;
    int32_t t = -1;
    size_t len = trie.longest_at(text, pos, &t);
    if (len == 0) continue;
    const AddedToken& tok = tokens_[size_t(t)];
    size_t start = pos, stop = pos + len;
    if (tok.lstrip) start = skip_space_back(text, start, done);
    if (tok.rstrip) stop = skip_space_forward(text, stop);
    if (start > done) out.push_back({text.substr(done, start - done), -1});
    out.push_back({text.substr(start, stop - start), tok.id});
    done = stop;
    pos = stop - 1;
  }
  if (done < text.size()) out.push_back({text.substr(done), -1});
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  out.clear();
  split_with(raw_, text, out);
  if (!any_normalized_) return;
  std::vector<Segment> first;
  first.swap(out);
  for (const Segment& s : first) {
    if (s.id >= 0) out.push_back(s);
    else split_with(normalized_, s.text, out);
  }
}

}  // namespace seek::tokenizer
