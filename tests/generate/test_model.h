// A tiny random model that speaks the real DeepSeek-V3 tokenizer, for engine and server tests:
// the v3-tiny fixture (3 layers, hidden 128, MoE) with its vocabulary widened from 1,000 to
// the release's 129,280 rows (fixture rows kept, new rows random, MTP layer dropped) and the
// fixture tokenizer files beside it. Built once per test process into a temp directory.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "core/safetensors_writer.h"
#include "model/config.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace seek::test {

inline constexpr int64_t kTestVocab = 129280;

inline std::string fixture_path(const std::string& rel) {
  std::string path = SEEK_FIXTURES;  // appended in steps: GCC 12 warns falsely on a + "/" + rel
  path += '/';
  return path += rel;
}

class TestModelDir {
 public:
  TestModelDir() {
    namespace fs = std::filesystem;
    dir_ = (fs::temp_directory_path() / ("seek-serve-model-" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    const std::string src = fixture_path("models/v3-tiny");
    model::ModelConfig cfg = model::ModelConfig::load(src);
    const int64_t old_vocab = cfg.vocab_size;
    cfg.vocab_size = kTestVocab;
    cfg.num_nextn_predict_layers = 0;
    cfg.eos_token_ids = {1};
    write_file_atomic(dir_ + "/config.json", cfg.to_json().dump(2));

    const TensorStore store = TensorStore::open(src);
    SafetensorsWriter w;
    uint64_t state = 0x9E3779B97F4A7C15ull;
    auto next = [&] {  // splitmix64
      uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return z ^ (z >> 31);
    };
    auto normal = [&] {  // Irwin-Hall: sum of 4 uniforms, unit variance
      double s = 0;
      for (int i = 0; i < 4; ++i) s += double(next() >> 11) / double(1ull << 53);
      return (s - 2.0) * std::sqrt(3.0);
    };
    const std::string mtp_prefix = "model.layers." + std::to_string(cfg.num_hidden_layers) + ".";
    for (const Tensor& t : store.tensors()) {
      if (t.name.rfind(mtp_prefix, 0) == 0) continue;
      if (t.name != "model.embed_tokens.weight" && t.name != "lm_head.weight") {
        w.add(t.name, t.dtype, t.shape, t.data, t.nbytes);
        continue;
      }
      const int64_t cols = t.shape[1];
      std::vector<uint16_t> rows(size_t(kTestVocab * cols));
      const auto* old = static_cast<const uint16_t*>(t.data);
      double var = 0;
      for (int64_t i = 0; i < old_vocab * cols; ++i) {
        rows[size_t(i)] = old[i];
        var += double(bf16_to_f32(old[i])) * bf16_to_f32(old[i]);
      }
      const double sd = std::sqrt(var / double(old_vocab * cols));
      for (int64_t i = old_vocab * cols; i < kTestVocab * cols; ++i)
        rows[size_t(i)] = f32_to_bf16(float(normal() * sd));
      w.add(t.name, DType::BF16, {kTestVocab, cols}, rows.data(), rows.size() * 2);
    }
    w.write(dir_ + "/model.safetensors");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(fixture_path(std::string("tokenizer/deepseek-v3/") + f), dir_ + "/" + f,
                    fs::copy_options::overwrite_existing);
  }
  ~TestModelDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

inline const std::string& test_model_dir() {
  static TestModelDir d;
  return d.dir();
}

inline const model::Model& test_model() {
  static std::unique_ptr<model::Model> m = model::Model::load(test_model_dir());
  return *m;
}

inline const tokenizer::Tokenizer& test_tokenizer() {
  static tokenizer::Tokenizer t = tokenizer::Tokenizer::load(test_model_dir());
  return t;
}

}  // namespace seek::test
