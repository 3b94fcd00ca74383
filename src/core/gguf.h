// GGUF, llama.cpp's single-file model format (versions 2 and 3, little-endian):
//
//   "GGUF" u32 version  u64 n_tensors  u64 n_kv
//   n_kv × (string key, u32 type, value)            metadata; string = u64 length + bytes
//   n_tensors × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   padding to general.alignment (default 32)
//   data section: each tensor at its offset (a multiple of the alignment)
//
// ne[] lists dimensions innermost first: a matrix [rows, cols] is stored as ne = {cols, rows},
// a stack of experts [E, rows, cols] as ne = {cols, rows, E}. GGUF keeps the data offsets only
// alignment-aligned, so readers of the bytes use memcpy, never a typed load of a wider element.
//
// The parser (fuzzed: fuzz/fuzz_gguf.cpp) validates everything before anything is trusted, and
// every error names the file and the field. The writer mirrors it and writes atomically.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/safetensors.h"  // LoadMode, ProgressFn

namespace seek {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars: integers and bools in `i` (U64 above INT64_MAX is refused),
// reals in `f`, strings in `s`. Arrays (of one scalar or string type; nested arrays are refused,
// as llama.cpp refuses them) in `ints`, `reals` or `strs` by element type.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem = GgufType::U32;  // element type of an Array
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> reals;
  std::vector<std::string> strs;

  static GgufValue u32(uint32_t v) { return integer(GgufType::U32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::I32, v); }
  static GgufValue u64(uint64_t v) { return integer(GgufType::U64, int64_t(v)); }
  static GgufValue boolean(bool v) { return integer(GgufType::Bool, v); }
  static GgufValue f32(float v) { GgufValue x; x.type = GgufType::F32; x.f = v; return x; }
  static GgufValue str(std::string v) { GgufValue x; x.type = GgufType::String; x.s = std::move(v); return x; }
  static GgufValue integer(GgufType t, int64_t v) { GgufValue x; x.type = t; x.i = v; return x; }
  static GgufValue int_array(GgufType elem, std::vector<int64_t> v);
  static GgufValue str_array(std::vector<std::string> v);

  bool is_integer() const;  // U8..I64 or Bool
  bool is_real() const { return type == GgufType::F32 || type == GgufType::F64; }
  size_t array_size() const;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> ne;  // innermost first, as stored
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
  // The shape outermost first, as safetensors and Hugging Face write it: ne reversed.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

struct GgufHeader {
  uint32_t version = 3;
  uint64_t alignment = 32;
  uint64_t data_start = 0;  // file offset of the data section
  std::vector<std::pair<std::string, GgufValue>> metadata;  // file order
  std::map<std::string, size_t, std::less<>> by_key;       // -> index into metadata
  std::vector<GgufTensorInfo> tensors;                       // file order

  const GgufValue* find(std::string_view key) const;
};

// Longest string / most entries a header may declare; bounds what hostile counts can make the
// parser allocate before it runs out of input (DeepSeek-V3's header: 129k tokens + 127k merges).
inline constexpr uint64_t kGgufMaxString = 64ull << 20;
inline constexpr uint64_t kGgufMaxDims = 4;  // GGML_MAX_DIMS

// Parses the whole file image bytes[0, size) (size = the file size). Throws seek::Error naming
// `file` and the field on: bad magic or version, truncation, string or count past the input,
// nested arrays, duplicate keys or tensor names, unknown metadata or GGML tensor types, more
// than 4 dims, negative dims or a product that overflows, a row not a whole number of blocks,
// a bad general.alignment, offsets not aligned or out of range, overlapping tensors.
GgufHeader parse_gguf(const uint8_t* bytes, size_t size, std::string_view file);

// GGML type id -> DType: F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12, Q6_K 14, BF16 30; false if unknown.
bool ggml_type_to_dtype(uint32_t ggml_type, DType* out);
uint32_t dtype_to_ggml_type(DType t);  // throws for dtypes GGUF has no id for (F8_E4M3, I32, I64)

// PATH is a regular file starting with the GGUF magic (how model paths are told from directories).
bool is_gguf_file(const std::string& path);

// An opened GGUF file: mapped read-only (Mmap) or read into anonymous memory (Read).
class GgufFile {
 public:
  static GgufFile open(const std::string& path, LoadMode mode = LoadMode::Mmap,
                       const ProgressFn& progress = {});
  GgufFile();
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const;
  const GgufHeader& header() const;
  const GgufValue* find(std::string_view key) const { return header().find(key); }
  const uint8_t* tensor_data(const GgufTensorInfo& t) const;
  uint64_t file_size() const;
  // Keeps the bytes alive for views that outlive this object (TensorStore::adopt).
  std::shared_ptr<const void> keep_alive() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Builds a GGUF file: metadata in the order set (a key set twice keeps its first place), then
// the tensor infos and data in the order added, each tensor at the next multiple of the alignment.
class GgufWriter {
 public:
  using FillFn = std::function<void(uint8_t* dst)>;  // writes exactly the tensor's bytes

  void set(const std::string& key, GgufValue v);
  // `ne` innermost first. `fill` runs during write(), one tensor at a time.
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, FillFn fill);
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, const void* data,
                  size_t nbytes);  // copies the bytes now
  size_t size() const { return tensors_.size(); }

  // PATH.tmp.* is written, fsynced and renamed over PATH; on failure the temporary is removed
  // and a seek::Error naming PATH is thrown.
  void write(const std::string& path, const ProgressFn& progress = {}) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    FillFn fill;
  };
  uint64_t alignment() const;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Entry> tensors_;
};

}  // namespace seek
