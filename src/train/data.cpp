#include "train/data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/tokenizer.h"

namespace seek::train {

namespace fs = std::filesystem;

std::vector<std::string> read_corpus(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) in_dir.push_back(e.path().string());
      std::sort(in_dir.begin(), in_dir.end());
      if (in_dir.empty()) fail("corpus: directory {} holds no files", p);
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) fail("corpus: no text files given");
  std::vector<std::string> texts;
  for (const std::string& f : files) {
    std::string t = read_file(f);
    if (t.empty()) fail("corpus: {} is empty", f);
    if (!valid_utf8(t)) fail("corpus: {} is not valid UTF-8 text", f);
    texts.push_back(std::move(t));
  }
  return texts;
}

std::vector<std::string> split_documents(const std::vector<std::string>& texts, size_t target) {
  std::vector<std::string> docs;
  for (const std::string& t : texts) {
    size_t start = 0;
    while (start < t.size()) {
      size_t end = std::min(t.size(), start + target);
      if (end < t.size()) {
        size_t cut = t.find("\n\n", end);
        if (cut == std::string::npos || cut > end + target) cut = t.find('\n', end);
        end = cut == std::string::npos ? t.size() : cut + 1;
      }
      docs.push_back(t.substr(start, end - start));
      start = end;
    }
  }
  return docs;
}

void write_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab) {
  const uint32_t width = vocab <= 65536 ? 2 : 4;
  std::string out = "SEEKTOK1";
  auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  const uint32_t version = 1;
  const uint64_t n = tokens.size(), v = uint64_t(vocab);
  put(&version, 4);
  put(&width, 4);
  put(&n, 8);
  put(&v, 8);
  out.reserve(out.size() + n * width);
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab) fail("shard {}: token id {} outside the vocabulary {}", path, t, vocab);
    if (width == 2) { const uint16_t s = uint16_t(t); put(&s, 2); }
    else put(&t, 4);
  }
  write_file_atomic(path, out);
}

// Maps `path` read-only after `check(size)` accepted its size (check throws naming the file);
// `what` names the kind of file in the open error. Returns the mapping and its size.
namespace {
template <typename Check>
std::pair<const uint8_t*, size_t> map_file(const std::string& path, const char* what, Check check) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open {} {}: {}", what, path, std::strerror(errno));
  struct stat st{};
  fstat(fd, &st);
  const size_t size = size_t(st.st_size);
  try {
    check(size);
  } catch (...) {
    ::close(fd);
    throw;
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail("cannot map {}: {}", path, std::strerror(errno));
  return {static_cast<const uint8_t*>(p), size};
}
}  // namespace

Shard Shard::open(const std::string& path) {
  Shard s;
  std::tie(s.base_, s.map_bytes_) = map_file(path, "token shard", [&](size_t size) {
    if (size < 32) fail("{}: not a token shard (too short)", path);
  });
  const size_t size = s.map_bytes_;
  uint32_t version, width;
  uint64_t n, v;
  std::memcpy(&version, s.base_ + 8, 4);
  std::memcpy(&width, s.base_ + 12, 4);
  std::memcpy(&n, s.base_ + 16, 8);
  std::memcpy(&v, s.base_ + 24, 8);
  if (std::memcmp(s.base_, "SEEKTOK1", 8) != 0 || version != 1 || (width != 2 && width != 4))
    fail("{}: not a version-1 token shard", path);
  if (32 + n * width != size) fail("{}: header says {} tokens but the file holds {} bytes", path, n, size);
  s.tokens_ = s.base_ + 32;
  s.n_ = int64_t(n);
  s.vocab_ = int64_t(v);
  s.width_ = int(width);
  return s;
}

Shard Shard::open_tokens(const std::string& path, int64_t vocab_size) {
  Shard s;
  std::tie(s.base_, s.map_bytes_) = map_file(path, "token file", [&](size_t size) {
    if (size == 0 || size % 4 != 0)
      fail("{}: {} bytes is not a whole number of little-endian uint32 token ids", path, size);
  });
  const size_t size = s.map_bytes_;
  s.tokens_ = s.base_;
  s.n_ = int64_t(size / 4);
  s.vocab_ = vocab_size;
  s.width_ = 4;
  for (int64_t i = 0; i < s.n_; ++i) {
    uint32_t v;
    std::memcpy(&v, s.tokens_ + 4 * i, 4);
    if (int64_t(v) >= vocab_size)
      fail("{}: token id {} at position {} (byte {}) is outside the model's vocabulary of {}", path, v,
           i, 4 * i, vocab_size);
  }
  return s;
}

Shard::Shard(Shard&& o) noexcept { *this = std::move(o); }
Shard& Shard::operator=(Shard&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(map_bytes_, o.map_bytes_);
  std::swap(tokens_, o.tokens_);
  std::swap(n_, o.n_);
  std::swap(vocab_, o.vocab_);
  std::swap(width_, o.width_);
  return *this;
}
Shard::~Shard() {
  if (base_) munmap(const_cast<uint8_t*>(base_), map_bytes_);
}

int32_t Shard::operator[](int64_t i) const {
  if (width_ == 2) {
    uint16_t v;
    std::memcpy(&v, tokens_ + 2 * i, 2);
    return int32_t(v);
  }
  int32_t v;
  std::memcpy(&v, tokens_ + 4 * i, 4);
  return v;
}

std::pair<int64_t, int64_t> build_shards(const std::vector<std::string>& docs,
                                         const tokenizer::Tokenizer& tok, int64_t vocab,
                                         const std::string& dir, int64_t val_every) {
  std::vector<int32_t> train, val;
  const int32_t bos = tok.bos_id(), eos = tok.eos_id();
  for (size_t d = 0; d < docs.size(); ++d) {
    std::vector<int32_t>& out = val_every > 0 && d % size_t(val_every) == size_t(val_every - 1) ? val : train;
    if (bos >= 0) out.push_back(bos);
    const std::vector<int32_t> ids = tok.encode(docs[d], false);
    out.insert(out.end(), ids.begin(), ids.end());
    if (eos >= 0) out.push_back(eos);
  }
  fs::create_directories(dir);
  write_shard(dir + "/train.bin", train, vocab);
  write_shard(dir + "/val.bin", val, vocab);
  return {int64_t(train.size()), int64_t(val.size())};
}

Loader::Loader(const Shard& shard, int64_t B, int64_t S, uint64_t seed, bool sequential)
    : shard_(shard), B_(B), S_(S), n_windows_((shard.size() - 1) / S), seed_(seed), sequential_(sequential) {
  if (n_windows_ < 1)
    fail("the data ({} tokens) is shorter than one training sequence of {} tokens", shard.size(), S + 1);
  shuffle();
}

void Loader::shuffle() {
  order_.resize(size_t(n_windows_));
  for (int64_t i = 0; i < n_windows_; ++i) order_[size_t(i)] = i;
  if (sequential_) return;
  std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + st_.epoch);
  std::shuffle(order_.begin(), order_.end(), rng);
}

void Loader::set_state(DataState s) {
  st_ = s;
  shuffle();
}

model::TokenBatch Loader::next() {
  std::vector<int32_t> tokens;
  tokens.reserve(size_t(B_ * (S_ + 1)));
  for (int64_t i = 0; i < B_; ++i) {
    if (st_.index >= uint64_t(n_windows_)) {
      ++st_.epoch;
      st_.index = 0;
      shuffle();
    }
    const int64_t start = order_[size_t(st_.index++)] * S_;
    for (int64_t j = 0; j <= S_; ++j) tokens.push_back(shard_[start + j]);
  }
  return model::TokenBatch::rows(B_, S_, std::move(tokens));
}

}  // namespace seek::train
