// Shared test fixtures: the DeepSeek-V3 tokenizer (7.8 MB of JSON) is loaded once per test
// binary, and the golden JSONL files are read through one helper. Header-only because the test
// build compiles only *_test.cpp files.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io.h"
#include "tokenizer/tokenizer.h"

namespace seek::tokenizer::testing {

inline std::string deepseek_dir() { return std::string(SEEK_FIXTURES) + "/tokenizer/deepseek-v3"; }

inline const Tokenizer& deepseek() {
  static const Tokenizer tok = Tokenizer::load(deepseek_dir());
  return tok;
}

// Every line of deepseek-v3/NAME parsed as JSON (ordered, so key order matches the file).
inline std::vector<nlohmann::ordered_json> read_jsonl(const std::string& name) {
  std::ifstream f(deepseek_dir() + "/" + name);
  std::vector<nlohmann::ordered_json> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(nlohmann::ordered_json::parse(line));
  return out;
}

}  // namespace seek::tokenizer::testing
