// Safetensors checkpoints: the header parser (fuzzed), and a TensorStore that holds every tensor
// of a model directory (single file or sharded with model.safetensors.index.json) exactly once,
// either mapped from the files or read into anonymous (huge-page backed) memory.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace seek {

struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
};

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + header length
  std::vector<TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Longest header accepted; real ones are far smaller (DeepSeek-V3: ~100 kB per shard), and the cap
// bounds what a hostile length field can make a reader allocate.
inline constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;

// Parses and validates a whole safetensors file image `bytes[0, size)` (or at least its first
// 8 + N bytes, with `file_size` the real size). Throws seek::Error naming `file` (and the tensor)
// on: short file, header length out of range, non-UTF-8 or malformed JSON, unknown dtype, shape/
// offset mismatch, offsets out of range, overlapping tensors, gaps (the tensors must tile the data
// section exactly, as the format specifies). Never reads out of bounds.
// The tensors come back sorted by `begin` (storage order).
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, uint64_t file_size,
                                           std::string_view file);

std::string shape_str(const std::vector<int64_t>& shape);  // "[576, 2048]"

struct Tensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the .safetensors file it came from (for error messages)
  // The address `data` is a multiple of dtype_size. The format does not promise that (offsets
  // and the header length are arbitrary), so kernels must not assume it; real releases are.
  bool aligned = true;
  int64_t numel() const;
  std::string shape_str() const;  // "[576, 2048]"
};

enum class LoadMode {
  Mmap,  // map the files read-only (shared page cache; pages fault in on first use)
  Read,  // read once into anonymous memory advised for transparent huge pages
};

// Called during loading with (bytes done, bytes total).
using ProgressFn = std::function<void(uint64_t, uint64_t)>;

class TensorStore {
 public:
  // `dir` is one of
  //  - a directory with model.safetensors.index.json: exactly the shards its weight_map names are
  //    loaded, and every tensor it lists must be in the shard it names (tensors a shard holds
  //    beyond the weight_map are loaded too);
  //  - a directory without an index: every *.safetensors file in it;
  //  - a .safetensors file, or an index .json file.
  // A tensor name that occurs in two files is an error naming both. Tensors are kept in file
  // order, then storage order. In Read mode the data section of each file starts 2 MiB aligned,
  // so a tensor is as aligned as its offset; in Mmap mode it is at the file offset 8 + N + begin.
  // `progress` is called with cumulative data-section bytes (per 64 MiB chunk in Read mode, per
  // file in Mmap mode).
  // `keep`, if given, selects the tensors to load by name (a pipeline stage's share of a model):
  // the others are left out of the store and their bytes are never read; a file holding none of
  // the kept tensors is not even mapped.
  static TensorStore open(const std::string& dir, LoadMode mode = LoadMode::Read,
                          const ProgressFn& progress = {},
                          const std::function<bool(std::string_view)>& keep = {});
  // A store over tensors whose bytes live elsewhere (a mapped GGUF file, buffers built while
  // importing one); `owners` keep that memory alive as long as the store. `dir` is what dir()
  // reports and each tensor's `file` names its source in errors. A repeated name is an error.
  static TensorStore adopt(std::string dir, LoadMode mode, std::vector<Tensor> tensors,
                           std::vector<std::shared_ptr<const void>> owners);
  TensorStore();
  TensorStore(TensorStore&&) noexcept;
  TensorStore& operator=(TensorStore&&) noexcept;
  ~TensorStore();

  const Tensor* find(std::string_view name) const;
  const Tensor& get(std::string_view name) const;  // throws "tensor X not found in DIR"
  const std::vector<Tensor>& tensors() const;
  uint64_t total_bytes() const;  // sum of nbytes
  const std::string& dir() const;  // as given to open()
  const std::vector<std::string>& files() const;  // the .safetensors files loaded, in load order
  LoadMode mode() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seek
