#include "serve/json_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenizer/tokenizer.h"

namespace seek::serve {

namespace {
bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

// A value just ended: back to the enclosing container (or done at the top level).
bool JsonRecognizer::end_value() {
  mode_ = depth_ == 0 ? Mode::Done : Mode::AfterValue;
  return true;
}

// One more character of a number; false if it cannot be one (the caller then ends the number).
bool JsonRecognizer::number_char(char c) {
  switch (num_) {
    case Num::Minus:
      if (c == '0') { num_ = Num::Zero; return true; }
      if (is_digit(c)) { num_ = Num::Int; return true; }
      return false;
    case Num::Zero:
    case Num::Int:
      if (num_ == Num::Int && is_digit(c)) return true;
      if (c == '.') { num_ = Num::Dot; return true; }
      if (c == 'e' || c == 'E') { num_ = Num::E; return true; }
      return false;
    case Num::Dot:
      if (is_digit(c)) { num_ = Num::Frac; return true; }
      return false;
    case Num::Frac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') { num_ = Num::E; return true; }
      return false;
    case Num::E:
      if (c == '+' || c == '-') { num_ = Num::ESign; return true; }
      if (is_digit(c)) { num_ = Num::Exp; return true; }
      return false;
    case Num::ESign:
      if (is_digit(c)) { num_ = Num::Exp; return true; }
      return false;
    case Num::Exp:
      return is_digit(c);
  }
  return false;
}

bool JsonRecognizer::feed(char c) {
  const bool ws = is_ws(c);
  if (ws && mode_ == Mode::Start) return false;  // the answer begins with '{'
  if (ws && mode_ != Mode::String && mode_ != Mode::Escape && mode_ != Mode::Unicode &&
      mode_ != Mode::Literal) {
    if (mode_ == Mode::Number) {
      if (num_ == Num::Minus || num_ == Num::Dot || num_ == Num::E || num_ == Num::ESign) return false;
      end_value();
    }
    if (mode_ == Mode::Done) return false;  // nothing may follow the object
    return ++spaces_ <= kMaxWhitespace;
  }
  if (!ws) spaces_ = 0;

  switch (mode_) {
    case Mode::Start:
      if (c != '{') return false;
      stack_[depth_++] = '{';
      mode_ = Mode::KeyFirst;
      return true;
    case Mode::Done:
      return false;
    case Mode::KeyFirst:
    case Mode::Key:
      if (c == '}' && mode_ == Mode::KeyFirst) {
        --depth_;
        return end_value();
      }
      if (c != '"') return false;
      mode_ = Mode::String;
      string_is_key_ = true;
      return true;
    case Mode::Colon:
      if (c != ':') return false;
      mode_ = Mode::Value;
      return true;
    case Mode::AfterValue: {
      const char open = stack_[depth_ - 1];
      if (c == ',') {
        mode_ = open == '{' ? Mode::Key : Mode::Value;
        return true;
      }
      if ((open == '{' && c == '}') || (open == '[' && c == ']')) {
        --depth_;
        return end_value();
      }
      return false;
    }
    case Mode::ArrFirst:
      if (c == ']') {
        --depth_;
        return end_value();
      }
      [[fallthrough]];
    case Mode::Value:
      if (c == '{' || c == '[') {
        if (depth_ >= kMaxDepth) return false;
        stack_[depth_++] = c;
        mode_ = c == '{' ? Mode::KeyFirst : Mode::ArrFirst;
        return true;
      }
      if (c == '"') {
        mode_ = Mode::String;
        string_is_key_ = false;
        return true;
      }
      if (c == '-' || is_digit(c)) {
        mode_ = Mode::Number;
        num_ = c == '-' ? Num::Minus : c == '0' ? Num::Zero : Num::Int;
        return true;
      }
      if (c == 't' || c == 'f' || c == 'n') {
        mode_ = Mode::Literal;
        literal_ = c == 't' ? "rue" : c == 'f' ? "alse" : "ull";
        return true;
      }
      return false;
    case Mode::String:
      if (c == '"') {
        if (string_is_key_) {
          mode_ = Mode::Colon;
          return true;
        }
        return end_value();
      }
      if (c == '\\') {
        mode_ = Mode::Escape;
        return true;
      }
      return static_cast<unsigned char>(c) >= 0x20;
    case Mode::Escape:
      if (c == 'u') {
        mode_ = Mode::Unicode;
        hex_left_ = 4;
        return true;
      }
      if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) return false;
      mode_ = Mode::String;
      return true;
    case Mode::Unicode:
      if (!is_hex(c)) return false;
      if (--hex_left_ == 0) mode_ = Mode::String;
      return true;
    case Mode::Number:
      if (number_char(c)) return true;
      if (num_ == Num::Minus || num_ == Num::Dot || num_ == Num::E || num_ == Num::ESign) return false;
      end_value();
      return feed(c);  // the character after the number: ',' or a closing bracket
    case Mode::Literal:
      if (c != *literal_) return false;
      if (*++literal_ == '\0') return end_value();
      return true;
  }
  return false;
}

bool JsonRecognizer::feed(std::string_view s) {
  for (char c : s)
    if (!feed(c)) return false;
  return true;
}

std::shared_ptr<const TokenBytes> TokenBytes::build(const tokenizer::Tokenizer& tok, int64_t vocab) {
  auto t = std::make_shared<TokenBytes>();
  t->bytes.resize(size_t(vocab));
  t->allowed.assign(size_t(vocab), 0);
  for (int64_t id = 0; id < vocab; ++id) {
    if (!tok.has_token(int32_t(id)) || tok.is_special(int32_t(id))) continue;
    std::string b(tok.id_to_bytes(int32_t(id)));
    if (b.empty()) continue;
    const bool marker = (b.rfind("<｜", 0) == 0 && b.size() >= 6 && b.ends_with("｜>")) ||
                        (b.rfind("<|", 0) == 0 && b.ends_with("|>"));
    if (marker) continue;
    t->bytes[size_t(id)] = std::move(b);
    t->allowed[size_t(id)] = 1;
  }
  return t;
}

void JsonObjectLogits::process(std::span<float> logits, int64_t) {
  const float ninf = -std::numeric_limits<float>::infinity();
  order_.clear();
  for (size_t id = 0; id < logits.size(); ++id)
    if (id < table_->allowed.size() && table_->allowed[id] && logits[id] > ninf)
      order_.push_back({logits[id], int32_t(id)});
  auto better = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  // Candidates best first: a partial sort of the head, widened to everything if the head holds
  // too few tokens the grammar allows (e.g. only ':' fits and the model does not favour it).
  std::vector<int32_t> keep;
  size_t sorted = 0;
  for (size_t head = 512; keep.size() < size_t(kCandidates) && sorted < order_.size(); head *= 16) {
    const size_t n = std::min(head, order_.size());
    std::partial_sort(order_.begin() + long(sorted), order_.begin() + long(n), order_.end(), better);
    for (size_t i = sorted; i < n && keep.size() < size_t(kCandidates); ++i) {
      JsonRecognizer probe = state_;
      if (probe.feed(table_->bytes[size_t(order_[i].second)])) keep.push_back(order_[i].second);
    }
    sorted = n;
  }
  std::vector<float> kept(keep.size());
  for (size_t i = 0; i < keep.size(); ++i) kept[i] = logits[size_t(keep[i])];
  std::fill(logits.begin(), logits.end(), ninf);
  for (size_t i = 0; i < keep.size(); ++i) logits[size_t(keep[i])] = kept[i];
  if (keep.empty())  // cannot happen with a byte-level vocabulary; end rather than emit garbage
    for (int32_t e : eos_) logits[size_t(e)] = 0.0f;
}

void JsonObjectLogits::accept(int32_t id) {
  if (id >= 0 && size_t(id) < table_->bytes.size()) state_.feed(table_->bytes[size_t(id)]);
}

}  // namespace seek::serve
