// Writes safetensors checkpoints in exactly the layout Hugging Face's `safetensors` produces:
// 8-byte little-endian header length N, N bytes of compact JSON
// {"__metadata__": {"format": "pt", ...}, name: {"dtype", "shape", "data_offsets": [begin, end]}}
// padded with spaces so the data section starts at a multiple of 8, then the tensors tiling the
// data section with no gap (readers, ours included, reject gaps).
//
// Layout: tensors are placed by element size, largest first (F32/I32 before BF16 before F8), in
// the order added within one size. As in HF's files this makes every tensor naturally aligned
// without padding: an 8-aligned data section plus offsets that are sums of larger multiples.
//
// Streaming: `add_lazy` tensors are produced while the file is written, one at a time, so a
// multi-GB checkpoint needs memory for about one tensor. Fill callbacks run on the calling thread
// in the order the tensors were added (not in file order; data is written at its offset), while a
// background thread writes the previous tensors. A fill may itself run in parallel (OpenMP).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/dtype.h"
#include "core/safetensors.h"  // ProgressFn

namespace seek {

class SafetensorsWriter {
 public:
  // Writes exactly the tensor's bytes (numel · dtype_size) to `dst`.
  using FillFn = std::function<void(uint8_t* dst)>;

  // Copies `data` (nbytes must equal numel · dtype_size). To write a large tensor that already
  // lives in memory without the copy, use add_lazy with a memcpy.
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
           size_t nbytes);
  void add_lazy(const std::string& name, DType dtype, std::vector<int64_t> shape, FillFn fill);
  // Extra "__metadata__" entries ("format": "pt" is always written).
  void set_metadata(const std::string& key, const std::string& value);

  size_t size() const { return entries_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }  // tensor data, all tensors

  // Writes one file atomically: PATH.tmp.* is filled, fsynced and renamed over PATH, so PATH is
  // either the old file or the complete new one. Any failure (no space, fill throws, ...) removes
  // the temporary and throws seek::Error naming PATH. `progress(done, total)` reports tensor
  // bytes on the calling thread.
  void write(const std::string& path, const ProgressFn& progress = {}) const;

  // Writes DIR/model.safetensors if total_bytes() <= max_shard_bytes; otherwise shards
  // DIR/model-0000k-of-0000n.safetensors (tensors in the order added, a new shard whenever the
  // next tensor would overflow the current one) plus DIR/model.safetensors.index.json
  // {"metadata": {"total_size"}, "weight_map": {name: file}}, written last. What an earlier
  // checkpoint in DIR left under these names (index, single file, shards of another split) is
  // then removed, so loaders cannot mix the two. Creates DIR. Returns the written file names.
  std::vector<std::string> write_sharded(const std::string& dir, uint64_t max_shard_bytes,
                                         const ProgressFn& progress = {}) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes = 0;
    std::vector<uint8_t> data;  // add()
    FillFn fill;                // add_lazy()
  };
  struct Progress;

  uint64_t check_entry(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
  void write_file(const std::vector<size_t>& which, const std::string& path, Progress& p) const;

  std::vector<Entry> entries_;
  std::unordered_set<std::string> names_;
  std::map<std::string, std::string> metadata_{{"format", "pt"}};
  uint64_t total_bytes_ = 0;
};

}  // namespace seek
