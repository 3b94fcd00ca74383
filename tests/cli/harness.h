// Runs the built `seek` binary (SEEK_BINARY) the way a user would and captures what it prints.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace seek::cli_test {

namespace fs = std::filesystem;

inline const std::string kFixtures = SEEK_FIXTURES;
inline const std::string kModels = kFixtures + "/models/";
inline const std::string kTokenizer = kFixtures + "/tokenizer/deepseek-v3";

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

// A fresh directory under the test temp dir, removed by the destructor.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "seek_cli_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Runs argv (argv[0] a path) with `input` on stdin and waits.
inline Result run_program(std::vector<std::string> argv_s, const std::string& input = "") {
  TempDir io;
  spit(io / "in", input);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, (io / "in").c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (io / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (io / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  Result r;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    ADD_FAILURE() << "cannot start " << argv_s[0];
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(io / "out");
  r.err = slurp(io / "err");
  return r;
}

// `seek args...` with `input` on stdin.
inline Result run_seek(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> argv_s = {SEEK_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  return run_program(std::move(argv_s), input);
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A model directory: every file of a fixture linked in, plus the DeepSeek-V3 tokenizer files.
inline void link_model(const std::string& fixture, const TempDir& dir, bool with_tokenizer) {
  for (const auto& e : fs::directory_iterator(kModels + fixture))
    fs::create_symlink(e.path(), dir.path / e.path().filename());
  if (with_tokenizer)
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      fs::create_symlink(fs::path(kTokenizer) / f, dir.path / f);
}

// A tiny model `seek train` made in one step on a small corpus ("add 3 and 2 gives 5."), with its
// own BPE tokenizer and chat template: DIR/base/final, a starting point for `seek sft`.
// A tiny model trained for one step on a small corpus, with its tokenizer, in DIR/base/final:
// dense, or `model_json` (a "model" section).
inline void make_tiny_base(const TempDir& dir, const std::string& model_json = "") {
  std::string corpus;
  for (int i = 0; i < 30; ++i)
    corpus += "add " + std::to_string(i) + " and 2 gives " + std::to_string(i + 2) + ".\n\n";
  spit(dir / "corpus.txt", corpus);
  spit(dir / "base.json", R"({
    "model": )" + (!model_json.empty() ? model_json : R"({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8,
              "v_head_dim": 8, "max_position_embeddings": 128, "num_nextn_predict_layers": 1})") + R"(,
    "data": {"files": ["corpus.txt"], "vocab_size": 300, "val_every": 10, "doc_bytes": 200},
    "train": {"seq_len": 16, "batch_size": 2, "steps": 1, "warmup": 0}, "out": "base" })");
  Result t = run_seek({"train", "-c", dir / "base.json", "-q"});
  ASSERT_EQ(t.code, 0) << t.err;
}

}  // namespace seek::cli_test
