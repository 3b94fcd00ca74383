// Tokenizer throughput: load time, encode MB/s and tokens/s, decode MB/s and the streaming
// decoder, single-threaded, on a few MB of mixed text (English, code, CJK, digits, emoji,
// whitespace runs) built deterministically from the fixture's encode cases, plus a corpus of
// random words that defeats the per-piece BPE cache.
//
// Usage: bench_tokenizer [MODEL_DIR] [MEGABYTES]
//   MODEL_DIR defaults to tests/fixtures/tokenizer/deepseek-v3 relative to the current directory
//   (run it from the repository root), MEGABYTES to 4.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Paragraph-sized snippets: the fixture's case texts when present, plus fixed samples so the
// bench also runs on a model directory without them.
std::vector<std::string> snippets(const std::string& model_dir) {
  std::vector<std::string> out = {
      "The quick brown fox jumps over the lazy dog. It's 2024-12-26 and we've shipped v3.1.4!\n",
      "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n",
      "春天来了，公园里的桃花和樱花都开了。周末的时候，很多人带着孩子去踏青、放风筝。\n",
      "今日は良い天気ですね。カタカナとひらがなと漢字が混ざっています。\n",
      "Prices: $1,234,567.89 (+12.5%) — call +1 (555) 010-4477 before 09:41:07.\n",
      "Emoji: 👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🚀🚀 ❤️ and more…\n",
      "    if (x < 0) {\n\t\treturn -1;\n    }\n\n\n",
  };
  std::ifstream f(model_dir + "/cases.jsonl");
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("text") && j["text"].is_string() && !j["text"].get<std::string>().empty())
      out.push_back(j["text"].get<std::string>());
  }
  return out;
}

std::string build_corpus(const std::vector<std::string>& parts, size_t bytes) {
  std::mt19937 rng(1234);  // fixed seed: the same corpus on every run
  std::string text;
  text.reserve(bytes + 4096);
  while (text.size() < bytes) {
    text += parts[rng() % parts.size()];
    text += (rng() % 4 == 0) ? "\n\n" : " ";
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = "tests/fixtures/tokenizer/deepseek-v3";
  double megabytes = 4.0;
  CLI::App app{"bench_tokenizer: encode and decode speed on a synthetic corpus"};
  app.add_option("MODEL_DIR", model_dir, "Directory with tokenizer.json")->capture_default_str();
  app.add_option("MEGABYTES", megabytes, "Corpus size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    auto t0 = Clock::now();
    const auto tok = seek::tokenizer::Tokenizer::load(model_dir);
    const double load_s = seconds_since(t0);
    const std::string text = build_corpus(snippets(model_dir), size_t(megabytes * 1e6));
    const double mb = double(text.size()) / 1e6;

    std::printf("model dir: %s\n", model_dir.c_str());
    std::printf("load: %.0f ms (vocab %zu ids)\n", load_s * 1e3, tok.vocab_size());
    std::printf("corpus: %.2f MB, single thread\n", mb);

    std::vector<int32_t> ids;
    auto encode = [&](const char* label, const std::string& input) {
      auto t = Clock::now();
      ids = tok.encode(input, false);
      double s = seconds_since(t);
      double in_mb = double(input.size()) / 1e6;
      std::printf("%-24s %7.2f MB/s  %9.0f tokens/s  (%zu tokens, %.2f bytes/token)\n", label, in_mb / s,
                  double(ids.size()) / s, ids.size(), double(input.size()) / double(ids.size()));
    };
    // Worst case for the piece cache: random lowercase words, almost all seen once.
    std::mt19937 rng(99);
    std::string unique_words;
    while (unique_words.size() < text.size() / 4) {
      unique_words += ' ';
      for (int k = 3 + int(rng() % 8); k > 0; --k) unique_words += char('a' + rng() % 26);
    }
    encode("encode, unique words", unique_words);
    encode("encode, first pass", text);
    encode("encode, second pass", text);  // the piece cache is warm now

    t0 = Clock::now();
    std::string back = tok.decode(ids, false);
    double s = seconds_since(t0);
    std::printf("%-24s %7.2f MB/s  %9.0f tokens/s\n", "decode", mb / s, double(ids.size()) / s);

    seek::tokenizer::StreamDecoder stream(tok);
    std::string streamed;
    streamed.reserve(text.size());
    t0 = Clock::now();
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    s = seconds_since(t0);
    std::printf("%-24s %7.2f MB/s  %9.0f tokens/s\n", "stream decode", mb / s, double(ids.size()) / s);

    if (back != text || streamed != text) {
      std::fprintf(stderr, "round trip FAILED\n");
      return 1;
    }
  } catch (const seek::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
