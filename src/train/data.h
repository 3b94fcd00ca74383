// Training data: text files → documents → token shards (a flat, memory-mapped array of token
// ids) → packed batches of fixed-length windows.
//
// Shard file format (little-endian):
//   "SEEKTOK1" | u32 version = 1 | u32 bytes per token (2 or 4) | u64 n_tokens | u64 vocab_size
//   | n_tokens ids
// Documents are stored back to back, each as BOS, its tokens, EOS; windows cross document
// boundaries (packing), so no token is wasted on padding.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "tokenizer/fwd.h"

namespace seek::train {

// Reads every file (a directory: its regular files, sorted), checking each is non-empty UTF-8;
// errors name the file.
std::vector<std::string> read_corpus(const std::vector<std::string>& paths);

// Splits texts into documents of about `target_bytes` at blank lines (or line ends).
std::vector<std::string> split_documents(const std::vector<std::string>& texts, size_t target_bytes);

void write_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size);

class Shard {
 public:
  static Shard open(const std::string& path);  // maps it; validates header and size
  // A raw token file: little-endian uint32 ids back to back, no header (what any trainer can
  // write with numpy's `ids.astype("<u4").tofile(path)`). Every id must be < vocab_size: an
  // error names the file and the first bad position.
  static Shard open_tokens(const std::string& path, int64_t vocab_size);
  Shard(Shard&&) noexcept;
  Shard& operator=(Shard&&) noexcept;
  ~Shard();
  int64_t size() const { return n_; }
  int64_t vocab_size() const { return vocab_; }
  int32_t operator[](int64_t i) const;

 private:
  Shard() = default;
  const uint8_t* base_ = nullptr;
  size_t map_bytes_ = 0;
  const uint8_t* tokens_ = nullptr;
  int64_t n_ = 0, vocab_ = 0;
  int width_ = 2;
};

// Tokenizes documents and writes DIR/train.bin and DIR/val.bin: every `val_every`-th document
// (deterministic) is held out for validation. Returns {train tokens, val tokens}.
std::pair<int64_t, int64_t> build_shards(const std::vector<std::string>& docs,
                                         const tokenizer::Tokenizer& tok, int64_t vocab_size,
                                         const std::string& dir, int64_t val_every);

// Where a loader is in its data: resumable exactly.
struct DataState {
  uint64_t epoch = 0, index = 0;
};

// What the training loop draws its micro-batches from (pretraining windows, SFT packs); the
// state rides in every checkpoint, so a resume continues exactly.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual model::TokenBatch next() = 0;
  virtual DataState state() const = 0;
  virtual void set_state(DataState s) = 0;
};

// Batches of B windows of S + 1 tokens. The shard is cut into windows starting every S tokens:
// window i = tokens[i·S, (i+1)·S + 1), count = (n − 1) / S (consecutive windows share one
// token: the last target of one is the first input of the next; a tail shorter than a window
// is not used). Shuffled: each epoch visits all windows in an order shuffled by (seed, epoch).
// Sequential: the k-th batch drawn (0-based) holds windows (k·B + j) mod count, j < B, so a run
// is reproducible by any other trainer from the token file alone.
class Loader : public BatchSource {
 public:
  Loader(const Shard& shard, int64_t B, int64_t S, uint64_t seed, bool sequential = false);
  model::TokenBatch next() override;
  int64_t windows() const { return n_windows_; }
  DataState state() const override { return st_; }
  void set_state(DataState s) override;

 private:
  void shuffle();
  const Shard& shard_;
  int64_t B_, S_, n_windows_;
  uint64_t seed_;
  bool sequential_;
  DataState st_;
  std::vector<int64_t> order_;
};

}  // namespace seek::train
