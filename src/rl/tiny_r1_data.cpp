#include "rl/tiny_r1_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <random>
#include <set>

#include "core/error.h"
#include "rl/eval.h"
#include "rl/expr.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/data.h"

namespace seek::rl {

namespace {

// ---- the search ----

// A value of the search with the expression that made it.
struct Val {
  int64_t v = 0;
  std::string text;
  char op = 0;  // top operation; 0 for a given number
};

// The answer's text, as solve_countdown writes it.
Val join(const Val& a, char op, const Val& b, int64_t v) {
  return {v, join_expression(a.text, a.op, op, b.text, b.op), op};
}

// The operations the search tries on a pair, larger value first, in its fixed order; each gives
// a positive integer (the generator's solutions never leave the positive integers, never * 1 or
// / 1). `final_step`: a product above kMaxTarget cannot be the target and is not computed.
struct Step {
  const Val* a;
  char op;
  const Val* b;
  int64_t v;
};
std::vector<Step> steps(const Val& x, const Val& y, bool final_step) {
  const Val& p = x.v >= y.v ? x : y;
  const Val& q = x.v >= y.v ? y : x;
  std::vector<Step> out;
  out.push_back({&p, '+', &q, p.v + q.v});
  if (p.v > q.v) out.push_back({&p, '-', &q, p.v - q.v});
  if (q.v > 1 && (!final_step || p.v * q.v <= kMaxTarget)) out.push_back({&p, '*', &q, p.v * q.v});
  if (q.v > 1 && p.v % q.v == 0) out.push_back({&p, '/', &q, p.v / q.v});
  return out;
}

std::string step_text(const Step& s) { return fmt::format("{}{}{}={}", s.a->v, s.op, s.b->v, s.v); }

// Intermediates above this are left out (they cannot come back to a target 1..999 except by an
// exact division, and a tiny model cannot multiply them anyway).
constexpr int64_t kMaxIntermediate = 9999;

// The three-value search; appends its lines. Returns the answer or nullopt (lines written so far
// stay in `lines`; the caller decides on the budget).
std::optional<Val> search3(const std::array<Val, 3>& vals, int64_t target,
                           std::vector<std::string>& lines) {
  static constexpr int kPairs[3][3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}};
  for (const auto& [i, j, k] : kPairs) {
    for (const Step& first : steps(vals[size_t(i)], vals[size_t(j)], false)) {
      if (first.v > kMaxIntermediate) continue;
      const Val w = join(*first.a, first.op, *first.b, first.v);
      std::string line = step_text(first) + ":";
      const std::vector<Step> finals = steps(w, vals[size_t(k)], true);
      for (size_t f = 0; f < finals.size(); ++f) {
        line += (f ? ", " : " ") + step_text(finals[f]);
        if (finals[f].v == target) {
          lines.push_back(std::move(line));
          return join(*finals[f].a, finals[f].op, *finals[f].b, target);
        }
      }
      lines.push_back(std::move(line));
    }
  }
  return std::nullopt;
}

// Unbiased integer draws (as CountdownGenerator: std::uniform_int_distribution is not portable).
struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  int64_t uniform(int64_t lo, int64_t hi) {
    const uint64_t range = uint64_t(hi - lo) + 1, threshold = (0 - range) % range;
    uint64_t x;
    do x = g();
    while (x < threshold);
    return lo + int64_t(x % range);
  }
  double real() { return double(g() >> 11) * 0x1.0p-53; }
};

}  // namespace

std::optional<CountdownTrace> countdown_trace(const CountdownProblem& p, int max_lines) {
  std::vector<Val> given;
  for (int n : p.numbers) given.push_back({n, std::to_string(n), 0});
  std::vector<std::string> lines;
  std::optional<Val> found;
  if (given.size() == 3) {
    found = search3({given[0], given[1], given[2]}, p.target, lines);
  } else if (given.size() == 4) {
    // The first pair and operation (fixed order) after which the three-value search succeeds;
    // only that one is written.
    for (size_t i = 0; i < 4 && !found; ++i) {
      for (size_t j = i + 1; j < 4 && !found; ++j) {
        std::vector<Val> rest;
        for (size_t k = 0; k < 4; ++k)
          if (k != i && k != j) rest.push_back(given[k]);
        for (const Step& s : steps(given[i], given[j], false)) {
          if (s.v > kMaxIntermediate) continue;
          const Val w = join(*s.a, s.op, *s.b, s.v);
          std::vector<std::string> sub = {
              fmt::format("{}, left {} {} {}", step_text(s), w.v, rest[0].v, rest[1].v)};
          if (auto r = search3({w, rest[0], rest[1]}, p.target, sub)) {
            found = r;
            lines = std::move(sub);
            break;
          }
        }
      }
    }
  } else {
    return std::nullopt;
  }
  if (!found || int(lines.size()) > max_lines) return std::nullopt;
  CountdownTrace t;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) t.reasoning += '\n';
    t.reasoning += lines[i];
  }
  t.answer = found->text;
  t.lines = int(lines.size());
  return t;
}

std::string trace_completion(const CountdownTrace& t) {
  return "<think>\n" + t.reasoning + "\n</think>\n\n<answer> " + t.answer + " </answer>";
}

nlohmann::json countdown_sft_record(const CountdownProblem& p, const CountdownTrace& t) {
  return {{"messages",
           {{{"role", "user"}, {"content", countdown_prompt(p.numbers, p.target)}},
            {{"role", "assistant"},
             {"content", "<answer> " + t.answer + " </answer>"},
             {"reasoning_content", t.reasoning}}}}};
}

std::vector<nlohmann::json> make_sft_traces(uint64_t seed, int64_t n, int max_lines,
                                            TraceSetStats* stats) {
  CountdownGenerator gen(seed);
  TraceSetStats st;
  std::set<std::pair<std::vector<int>, int>> seen;  // a problem appears once
  std::vector<nlohmann::json> out;
  while (int64_t(out.size()) < n) {
    if (st.drawn > 1000 * (n + 10)) fail("make-data: too few problems with a short enough search");
    CountdownProblem p = gen.next();
    ++st.drawn;
    if (countdown_split(p) != CountdownSplit::Train) {
      ++st.eval_split;
      continue;
    }
    std::vector<int> key = p.numbers;
    std::sort(key.begin(), key.end());
    if (!seen.insert({key, p.target}).second) continue;
    std::optional<CountdownTrace> t = countdown_trace(p, max_lines);
    if (!t) {
      ++st.too_long;
      continue;
    }
    if (auto why = countdown_mistake(t->answer, p.numbers, p.target))
      fail("make-data: the trace of {} -> {} answers \"{}\", which {}", nlohmann::json(p.numbers).dump(),
           p.target, t->answer, *why);
    out.push_back(countdown_sft_record(p, *t));
  }
  st.kept = int64_t(out.size());
  if (stats) *stats = st;
  return out;
}

std::vector<nlohmann::json> make_prompt_records(uint64_t seed, int64_t n) {
  std::vector<nlohmann::json> out;
  for (const EvalTask& t : countdown_tasks(seed, n, CountdownSplit::Train)) {
    nlohmann::json r = t.record;
    r.erase("solution");  // a task, not an answer key
    r["prompt"] = t.prompt;
    out.push_back(std::move(r));
  }
  return out;
}

// ---- the base corpus ----

namespace {

constexpr const char* kCountdownHead = "reach ";

// Eight single steps of the kinds the search writes: sums and differences up to four digits,
// products of two-digit numbers, exact quotients.
std::string arithmetic_paragraph(Rng& r) {
  std::string s;
  for (int line = 0; line < 8; ++line) {
    const int64_t kind = r.uniform(0, 3);
    int64_t a, b;
    if (kind <= 1) {
      a = r.uniform(1, r.uniform(0, 1) ? 99 : 999), b = r.uniform(1, 99);
      if (a < b) std::swap(a, b);
      if (kind == 1 && a == b) ++a;
      s += kind == 0 ? fmt::format("{}+{}={}\n", a, b, a + b) : fmt::format("{}-{}={}\n", a, b, a - b);
    } else {
      a = r.uniform(2, 99), b = r.uniform(2, r.uniform(0, 1) ? 99 : 12);
      if (a < b) std::swap(a, b);
      s += kind == 2 ? fmt::format("{}*{}={}\n", a, b, a * b) : fmt::format("{}/{}={}\n", a * b, b, a);
    }
  }
  return s;
}

// A search as in the traces, in plain text: the problem, its lines, the answer.
std::string countdown_paragraph(CountdownGenerator& gen) {
  for (;;) {
    CountdownProblem p = gen.next();
    if (countdown_split(p) != CountdownSplit::Train) continue;
    std::optional<CountdownTrace> t = countdown_trace(p, 24);
    if (!t) continue;
    std::string nums;
    for (int n : p.numbers) {
      if (!nums.empty()) nums += ' ';
      nums += std::to_string(n);
    }
    return fmt::format("{}{} with {}\n{}\nanswer {} = {}\n", kCountdownHead, p.target, nums,
                       t->reasoning, t->answer, p.target);
  }
}

// "Compute 36 + 19 * 7." in the chat template, worked in <think> and answered in <answer>: the
// base model meets the template's special tokens and the R1 answer layout before SFT, so the
// 2,000 cold-start traces teach the search rather than the format (a model that has never seen
// <｜Assistant｜> or <answer> spends its few SFT steps on them).
std::string chat_paragraph(Rng& r, const tokenizer::ChatTemplate& tmpl) {
  const int n = int(r.uniform(2, 3));
  std::vector<Val> vals;
  for (int i = 0; i < n; ++i) {
    const int64_t v = r.uniform(2, 99);
    vals.push_back({v, std::to_string(v), 0});
  }
  std::string work;
  while (vals.size() > 1) {
    const size_t i = size_t(r.uniform(0, int64_t(vals.size()) - 2));
    const std::vector<Step> options = steps(vals[i], vals[i + 1], false);
    const Step s = options[size_t(r.uniform(0, int64_t(options.size()) - 1))];
    if (s.v > kMaxIntermediate) continue;
    if (!work.empty()) work += '\n';
    work += step_text(s);
    const Val joined = join(*s.a, s.op, *s.b, s.v);
    vals.erase(vals.begin() + std::ptrdiff_t(i), vals.begin() + std::ptrdiff_t(i) + 2);
    vals.insert(vals.begin() + std::ptrdiff_t(i), joined);
  }
  const nlohmann::json messages = {
      {{"role", "user"},
       {"content", fmt::format("Compute {}. Show your work in <think> </think> tags. And return the "
                               "final answer in <answer> </answer> tags.",
                               vals[0].text)}},
      {{"role", "assistant"},
       {"content", fmt::format("<think>\n{}\n</think>\n\n<answer> {} </answer>", work, vals[0].v)}}};
  return tmpl.render(messages, /*add_generation_prompt=*/false) + "\n";
}

// A training-split Countdown problem in the task's exact prompt, answered with its search trace,
// rendered as `seek sft` renders a trace record (the same tokens SFT and GRPO see). With only the
// 2,000 cold-start traces a model of a few million parameters never learned to copy the prompt's
// numbers into its search (0% held-out, 2026-12); tens of thousands of these in pretraining teach
// the reading, the SFT stage then the assistant turn alone.
std::string prompt_paragraph(CountdownGenerator& gen, const tokenizer::ChatTemplate& tmpl,
                             int max_lines) {
  for (;;) {
    CountdownProblem p = gen.next();
    if (countdown_split(p) != CountdownSplit::Train) continue;
    std::optional<CountdownTrace> t = countdown_trace(p, max_lines);
    if (!t) continue;
    const nlohmann::json messages = {
        {{"role", "user"}, {"content", countdown_prompt(p.numbers, p.target)}},
        {{"role", "assistant"}, {"content", trace_completion(*t)}}};
    return tmpl.render(messages, /*add_generation_prompt=*/false) + "\n";
  }
}

// Short sentences from a small grammar: a little English for the words of the prompts.
std::string text_paragraph(Rng& r) {
  static const char* kWho[] = {"The cat", "A student", "My friend", "The teacher", "A small dog",
                               "The farmer", "Our team", "The old man", "A child", "The baker"};
  static const char* kDid[] = {"found", "counted", "used", "wrote down", "added up",
                               "shared", "carried", "checked", "showed", "created"};
  static const char* kWhat[] = {"the numbers", "an equation", "three apples", "the answer",
                                "a basic plan", "each coin", "the final result", "some work",
                                "four red boxes", "the example"};
  static const char* kWhen[] = {"today", "at night", "again", "in the morning", "once",
                                "with care", "by the door", "after lunch", "in the end", "quickly"};
  static const char* kWords[] = {"zero", "one", "two", "three", "four", "five",
                                 "six", "seven", "eight", "nine", "ten"};
  std::string s;
  const int64_t sentences = r.uniform(3, 6);
  for (int64_t i = 0; i < sentences; ++i) {
    if (r.uniform(0, 3) == 0) {
      const int64_t a = r.uniform(0, 10), b = r.uniform(0, 10);
      std::string w = kWords[a];
      w[0] = char(w[0] - 'a' + 'A');
      s += a == b  ? fmt::format("{} is equal to {}.", w, kWords[b])
           : a > b ? fmt::format("{} is more than {}.", w, kWords[b])
                   : fmt::format("{} is less than {}.", w, kWords[b]);
    } else {
      s += fmt::format("{} {} {} {}.", kWho[r.uniform(0, 9)], kDid[r.uniform(0, 9)],
                       kWhat[r.uniform(0, 9)], kWhen[r.uniform(0, 9)]);
    }
    s += i + 1 < sentences ? " " : "\n";
  }
  return s;
}

}  // namespace

CorpusKind classify_paragraph(std::string_view p) {
  if (p.starts_with(train::kBos))
    return p.find("<｜User｜>Using the numbers [") != std::string_view::npos ? CorpusKind::Prompt
                                                                          : CorpusKind::Chat;
  if (p.starts_with(kCountdownHead)) return CorpusKind::Countdown;
  if (!p.empty() && p[0] >= '0' && p[0] <= '9') return CorpusKind::Arithmetic;
  return CorpusKind::Text;
}

std::string make_base_corpus(uint64_t seed, int64_t bytes, const CorpusMix& mix,
                             CorpusStats* stats) {
  const double share[kCorpusKinds] = {mix.arithmetic, mix.countdown, mix.chat, mix.prompt,
                                      mix.text};
  double sum = 0.0;
  for (double s : share) {
    if (!(s >= 0.0)) fail("make-data: corpus mix shares must be non-negative");
    sum += s;
  }
  if (sum <= 0.0) fail("make-data: the corpus mix is empty");
  Rng r(seed);
  // Its own problem stream, so the mix does not change which problems the traces see.
  CountdownGenerator gen(seed ^ 0x636f72707573ull), prompt_gen(seed ^ 0x70726f6d7074ull);
  const tokenizer::ChatTemplate tmpl =
      tokenizer::ChatTemplate::from_source(train::kDeepSeekV3ChatTemplate, train::kBos, train::kEos);
  CorpusStats st;
  std::string out;
  while (int64_t(out.size()) < bytes) {
    // The kind furthest below its share so far: the byte mix tracks the shares at every length,
    // with ties broken at random so kinds interleave.
    int kind = 0;
    double worst = 1e300;
    const double total = double(out.size()) + 1.0;
    for (int k = 0; k < kCorpusKinds; ++k) {
      if (share[k] <= 0.0) continue;
      const double rel = double(st.bytes[k]) / total - share[k] / sum + 1e-3 * r.real();
      if (rel < worst) worst = rel, kind = k;
    }
    std::string p = kind == 0   ? arithmetic_paragraph(r)
                    : kind == 1 ? countdown_paragraph(gen)
                    : kind == 2 ? chat_paragraph(r, tmpl)
                    : kind == 3 ? prompt_paragraph(prompt_gen, tmpl, mix.prompt_lines)
                                : text_paragraph(r);
    if (!out.empty()) out += "\n";  // blank line between paragraphs (split_documents cuts there)
    st.bytes[kind] += int64_t(p.size());
    ++st.paragraphs[kind];
    out += p;
  }
  if (stats) *stats = st;
  return out;
}

train::BpeResult digit_tokenizer(const std::string& corpus, const std::vector<std::string>& extra,
                                 int64_t vocab_size) {
  std::vector<std::string> texts;
  std::string stripped;
  stripped.reserve(corpus.size());
  for (char c : corpus)
    if (c < '0' || c > '9') stripped += c;
  texts.push_back(std::move(stripped));
  texts.insert(texts.end(), extra.begin(), extra.end());
  return train::train_bpe(texts, vocab_size, train::kDeepSeekV3ChatTemplate);
}

std::vector<int32_t> encode_corpus(const std::string& corpus, const tokenizer::Tokenizer& tok,
                                   size_t doc_bytes) {
  std::vector<int32_t> ids;
  for (const std::string& d : train::split_documents({corpus}, doc_bytes)) {
    ids.push_back(tok.bos_id());
    const std::vector<int32_t> t = tok.encode(d, /*add_special_tokens=*/false);
    ids.insert(ids.end(), t.begin(), t.end());
    ids.push_back(tok.eos_id());
  }
  return ids;
}

}  // namespace seek::rl
