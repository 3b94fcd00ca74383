// Byte-pair encoding of one pre-tokenized piece, by merge rank.
//
// A piece starts as one symbol per byte (the id of that byte's single-byte token). The adjacent
// pair with the lowest merge rank is merged, ties going to the leftmost pair, until no adjacent
// pair has a merge. This is what tokenizers' BPE::merge_word does with `dropout: null`; the merges
// run even when the whole piece is itself a vocab entry unless `ignore_merges` is set.
//
// Two merge loops compute the same thing: merge_naive() rescans the list of adjacent pairs after
// every merge (O(n^2) comparisons, the readable reference, and as fast as anything for the short
// pieces that make up almost all text) and merge_heap() keeps candidate pairs in a priority
// queue over a linked list (O(n log n), so a megabyte-long run of one letter stays tractable).
// A bounded per-piece cache sits in front of both.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace seek::tokenizer {

// (left id, right id) -> (rank, merged id): open addressing on a 64-bit key, because this lookup
// is the inner loop of BPE and std::unordered_map's node chasing costs several times more.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  void reserve(size_t n);
  // A later merge of the same pair replaces the earlier one (tokenizers collects into a map).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t merged);
  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are non-negative, so never a real key
  static uint64_t pack(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  void grow();
  std::vector<Entry> slots_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

class Bpe {
 public:
  struct Config {
    std::array<int32_t, 256> byte_ids;  // id of each single-byte token, -1 if absent
    int32_t unk_id = -1;                // emitted for a byte without a token; dropped if -1
    bool ignore_merges = false;
    std::unordered_map<std::string, int32_t> whole_pieces;  // raw bytes -> id, for ignore_merges
  };
  Bpe();
  Bpe(Config config, MergeTable merges);
  Bpe(Bpe&&) noexcept;
  Bpe& operator=(Bpe&&) noexcept;
  ~Bpe();

  // Appends the ids of `piece` (raw bytes) to `out`.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  // Symbols of a piece before merging.
  void initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const;
  void merge_naive(std::vector<int32_t>& syms) const;
  void merge_heap(std::vector<int32_t>& syms) const;

 private:
  struct Cache;
  Config config_;
  MergeTable merges_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace seek::tokenizer
