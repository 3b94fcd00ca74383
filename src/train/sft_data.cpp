#include "train/sft_data.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string_view>

#include "core/error.h"
#include "core/io.h"

namespace seek::train {

using nlohmann::json;

namespace {

// Stands in for assistant turn k while the template renders: control characters and a tag no
// chat text is expected to hold (one that does is caught: every marker must appear once).
std::string marker(size_t k) { return fmt::format("\x1eseek-sft-{}\x1f", k); }
constexpr std::string_view kMarkerHead = "\x1eseek-sft-";

}  // namespace

json check_record(const json& record) {
  if (!record.is_object())
    fail("a record must be a JSON object with \"messages\", got {}", json_kind(record));
  if (!record.contains("messages")) fail("missing \"messages\"");
  const json& ms = record["messages"];
  if (!ms.is_array()) fail("\"messages\" must be an array, got {}", json_kind(ms));
  if (ms.empty()) fail("\"messages\" is empty");
  json out = json::array();
  bool assistant = false;
  for (size_t i = 0; i < ms.size(); ++i) {
    const json& m = ms[i];
    const std::string at = fmt::format("messages[{}]", i);
    if (!m.is_object()) fail("{} must be an object, got {}", at, json_kind(m));
    if (!m.contains("role")) fail("{}: missing \"role\"", at);
    if (!m["role"].is_string()) fail("{}: \"role\" must be a string, got {}", at, json_kind(m["role"]));
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      fail("{}: unknown role \"{}\" (system, user or assistant)", at, role);
    if (!m.contains("content")) fail("{}: missing \"content\"", at);
    json o = {{"role", role}};
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::string& k = it.key();
      if (k == "role") continue;
      if (k != "content" && k != "reasoning_content") fail("{}: unknown field \"{}\"", at, k);
      if (k == "reasoning_content" && role != "assistant")
        fail("{}: \"reasoning_content\" belongs to an assistant message, not a {} one", at, role);
      if (!it.value().is_string()) fail("{}: \"{}\" must be a string, got {}", at, k, json_kind(it.value()));
      o[k] = it.value();
    }
    assistant = assistant || role == "assistant";
    out.push_back(std::move(o));
  }
  if (!assistant) fail("no assistant message to train on");
  return out;
}

RenderedChat render_for_training(const tokenizer::ChatTemplate& tmpl, const json& messages) {
  json marked = json::array();
  std::vector<std::string> trained;
  for (const json& m : messages) {
    json c = {{"role", m["role"]}, {"content", m["content"]}};
    if (m["role"] == "assistant") {
      // DeepSeek-R1's output format, the one the engine's reasoning splitter reads back.
      std::string text = m["content"];
      if (m.contains("reasoning_content"))
        text = "<think>\n" + m["reasoning_content"].get<std::string>() + "\n</think>\n\n" + text;
      c["content"] = marker(trained.size());
      trained.push_back(std::move(text));
    }
    marked.push_back(std::move(c));
  }
  const std::string r = tmpl.render(marked, /*add_generation_prompt=*/false);
  RenderedChat out;
  out.text.reserve(r.size() + 256);
  size_t at = 0;
  for (size_t k = 0; k < trained.size(); ++k) {
    const std::string mk = marker(k);
    const size_t hit = r.find(mk, at);
    if (hit == std::string::npos || r.find(mk, hit + mk.size()) != std::string::npos)
      fail("the chat template does not render assistant message {} exactly once as written", k + 1);
    out.text.append(r, at, hit - at);
    out.assistant.emplace_back(out.text.size(), out.text.size() + trained[k].size());
    out.text += trained[k];
    at = hit + mk.size();
  }
  out.text.append(r, at);
  // A marker left over: a message held one, or the template repeats a content.
  size_t markers = 0;
  for (size_t p = r.find(kMarkerHead); p != std::string::npos; p = r.find(kMarkerHead, p + 1)) ++markers;
  if (markers != trained.size())
    fail("the chat template does not render the assistant messages exactly once as written");
  return out;
}

int64_t SftSample::trained() const {
  int64_t n = 0;
  for (size_t i = 1; i < mask.size(); ++i) n += mask[i];
  return n;
}

SftSample tokenize_chat(const RenderedChat& chat, const tokenizer::Tokenizer& tok) {
  SftSample s;
  s.tokens = tok.encode(chat.text, /*add_special_tokens=*/false);
  s.mask.assign(s.tokens.size(), 0);
  // Each token's byte offset in the text: byte-level BPE spells the text exactly.
  std::string spelled;
  spelled.reserve(chat.text.size());
  std::vector<size_t> start(s.tokens.size());
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    start[i] = spelled.size();
    spelled += tok.id_to_bytes(s.tokens[i]);
  }
  if (spelled != chat.text)
    fail("the tokenizer's tokens do not spell the rendered conversation byte for byte, so the "
         "assistant's tokens cannot be told apart");
  const int32_t eos = tok.eos_id();
  size_t k = 0;
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    while (k < chat.assistant.size() && chat.assistant[k].second < start[i]) ++k;
    if (k == chat.assistant.size()) break;
    const auto [b, e] = chat.assistant[k];
    // Inside the assistant's text, or the end-of-sentence token that closes it.
    if ((start[i] >= b && start[i] < e) || (start[i] == e && s.tokens[i] == eos && eos >= 0)) s.mask[i] = 1;
  }
  return s;
}

SftData load_sft(const std::vector<std::string>& files, const tokenizer::ChatTemplate& tmpl,
                 const tokenizer::Tokenizer& tok, const SftLimits& limits, bool skip_bad) {
  SftData d;
  for (const std::string& file : files) {
    const std::string text = read_file(file);
    size_t pos = 0;
    for (int64_t line_no = 1; pos < text.size(); ++line_no) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + pos, end - pos);
      pos = end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      try {
        json rec;
        try {
          rec = json::parse(line);
        } catch (const json::parse_error& e) {
          fail("invalid JSON: {}", e.what());
        }
        SftSample s = tokenize_chat(render_for_training(tmpl, check_record(rec)), tok);
        if (s.targets() > limits.max_targets)
          fail("the conversation has {} tokens, more than {}", s.targets() + 1, limits.max_reason);
        if (s.targets() < limits.min_targets)
          fail("the conversation has {} tokens; training needs at least {}", s.targets() + 1, limits.min_targets + 1);
        if (s.trained() == 0) fail("no assistant token to train on");
        d.samples.push_back(std::move(s));
      } catch (const Error& e) {
        const std::string msg = fmt::format("{}:{}: {}", file, line_no, e.what());
        if (!skip_bad) throw Error(msg + " (\"skip_bad\": true skips bad records)");
        if (d.skipped++ == 0) d.first_skipped = msg;
      }
    }
  }
  if (d.samples.empty())
    fail("{}: no usable chat record{}", fmt::join(files, ", "),
         d.skipped ? fmt::format(" ({} bad ones skipped; the first: {})", d.skipped, d.first_skipped) : "");
  return d;
}

model::TokenBatch pack(const std::vector<const SftSample*>& samples) {
  model::TokenBatch b;
  for (const SftSample* s : samples) {
    b.tokens.insert(b.tokens.end(), s->tokens.begin(), s->tokens.end());
    b.lengths.push_back(s->targets());
    // Target j of a sample is token j + 1: its weight is that token's mask.
    for (size_t j = 1; j < s->mask.size(); ++j) b.weights.push_back(float(s->mask[j]));
  }
  return b;
}

SftLoader::SftLoader(const std::vector<SftSample>& samples, int64_t budget, uint64_t seed, bool shuffle)
    : samples_(samples), budget_(budget), seed_(seed), shuffle_(shuffle) {
  if (samples_.empty()) fail("SFT: no samples to train on");
  order_ = order(0);
}

std::vector<int64_t> SftLoader::order(uint64_t epoch) const {
  std::vector<int64_t> o(samples_.size());
  std::iota(o.begin(), o.end(), int64_t(0));
  if (shuffle_) {
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + epoch);
    std::shuffle(o.begin(), o.end(), rng);
  }
  return o;
}

void SftLoader::set_state(DataState s) {
  st_ = s;
  order_ = order(s.epoch);
}

model::TokenBatch SftLoader::next() {
  std::vector<const SftSample*> take;
  int64_t used = 0;
  for (;;) {
    if (st_.index >= order_.size()) {
      if (!take.empty()) break;  // a pack never spans two epochs
      ++st_.epoch;
      st_.index = 0;
      order_ = order(st_.epoch);
    }
    const SftSample& s = samples_[size_t(order_[st_.index])];
    if (!take.empty() && used + s.targets() > budget_) break;
    take.push_back(&s);
    used += s.targets();
    ++st_.index;
  }
  return pack(take);
}

int64_t SftLoader::packs_in_epoch(uint64_t epoch) const {
  int64_t packs = 0, used = 0;
  for (int64_t i : order(epoch)) {
    const int64_t n = samples_[size_t(i)].targets();
    if (packs == 0 || used + n > budget_) {
      ++packs;
      used = 0;
    }
    used += n;
  }
  return packs;
}

}  // namespace seek::train
