// The GGUF header parser: bounds-checked reads from a file image, every count checked against
// the bytes left before anything is allocated for it.
#include "core/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace seek {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

GgufValue GgufValue::int_array(GgufType elem, std::vector<int64_t> v) {
  GgufValue x;
  x.type = GgufType::Array;
  x.elem = elem;
  x.ints = std::move(v);
  return x;
}

GgufValue GgufValue::str_array(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::Array;
  x.elem = GgufType::String;
  x.strs = std::move(v);
  return x;
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64:
    case GgufType::Bool: return true;
    default: return false;
  }
}

size_t GgufValue::array_size() const { return ints.size() + reals.size() + strs.size(); }

const GgufValue* GgufHeader::find(std::string_view key) const {
  auto it = by_key.find(key);
  return it == by_key.end() ? nullptr : &metadata[it->second].second;
}

namespace {

struct GgmlType {
  uint32_t id;
  DType dtype;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, DType::F32}, {1, DType::F16}, {2, DType::Q4_0}, {8, DType::Q8_0},
    {12, DType::Q4_K}, {14, DType::Q6_K}, {30, DType::BF16},
};

// Bytes of one scalar of a metadata type; 0 for String and Array.
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

class Cursor {
 public:
  Cursor(const uint8_t* p, size_t size, std::string_view file) : p_(p), size_(size), file_(file) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > left())
      fail("{}: truncated GGUF: {} needs {} bytes at offset {}, the file has {} left", file_, what,
           n, pos_, left());
  }
  template <class T>
  T pod(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));  // unaligned: offsets in GGUF are arbitrary
    pos_ += sizeof(T);
    return v;
  }
  std::string str(std::string_view what) {
    uint64_t n = pod<uint64_t>(what);
    if (n > kGgufMaxString)
      fail("{}: {} has length {} (more than the {} accepted)", file_, what, n, kGgufMaxString);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  // A count of entries that take at least `min_bytes` each: more than the input could hold is
  // an error now, before anything is sized by it.
  uint64_t count(std::string_view what, uint64_t min_bytes) {
    uint64_t n = pod<uint64_t>(what);
    if (n > left() / min_bytes)
      fail("{}: {} is {}, more than the {} bytes left can hold", file_, what, n, left());
    return n;
  }
  std::string_view file() const { return file_; }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  std::string_view file_;
};

int64_t read_int(Cursor& c, GgufType t, const std::string& what) {
  switch (t) {
    case GgufType::U8: return c.pod<uint8_t>(what);
    case GgufType::I8: return c.pod<int8_t>(what);
    case GgufType::U16: return c.pod<uint16_t>(what);
    case GgufType::I16: return c.pod<int16_t>(what);
    case GgufType::U32: return c.pod<uint32_t>(what);
    case GgufType::I32: return c.pod<int32_t>(what);
    case GgufType::I64: return c.pod<int64_t>(what);
    case GgufType::U64: {
      uint64_t v = c.pod<uint64_t>(what);
      if (v > uint64_t(std::numeric_limits<int64_t>::max()))
        fail("{}: {} is {}, too large", c.file(), what, v);
      return int64_t(v);
    }
    case GgufType::Bool: {
      uint8_t v = c.pod<uint8_t>(what);
      if (v > 1) fail("{}: {} is a bool holding {}", c.file(), what, v);
      return v;
    }
    default: fail("{}: {} is not an integer type", c.file(), what);
  }
}

double read_real(Cursor& c, GgufType t, const std::string& what) {
  if (t == GgufType::F32) return c.pod<float>(what);
  return c.pod<double>(what);
}

GgufType read_type(Cursor& c, const std::string& what) {
  uint32_t t = c.pod<uint32_t>(what);
  if (t > uint32_t(GgufType::F64)) fail("{}: {} has unknown value type {}", c.file(), what, t);
  return GgufType(t);
}

GgufValue read_value(Cursor& c, const std::string& key) {
  GgufValue v;
  v.type = read_type(c, "type of metadata \"" + key + "\"");
  const std::string what = "metadata \"" + key + "\"";
  if (v.type == GgufType::String) {
    v.s = c.str(what);
  } else if (v.type == GgufType::F32 || v.type == GgufType::F64) {
    v.f = read_real(c, v.type, what);
  } else if (v.type != GgufType::Array) {
    v.i = read_int(c, v.type, what);
  } else {
    v.elem = read_type(c, "element type of " + what);
    if (v.elem == GgufType::Array) fail("{}: {} is a nested array (not supported)", c.file(), what);
    const size_t min = v.elem == GgufType::String ? 8 : scalar_size(v.elem);
    const uint64_t n = c.count("length of " + what, min);
    if (v.elem == GgufType::String) {
      v.strs.reserve(size_t(std::min<uint64_t>(n, 1u << 20)));
      for (uint64_t k = 0; k < n; ++k) v.strs.push_back(c.str(what));
    } else if (v.elem == GgufType::F32 || v.elem == GgufType::F64) {
      v.reals.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.reals.push_back(read_real(c, v.elem, what));
    } else {
      v.ints.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.ints.push_back(read_int(c, v.elem, what));
    }
  }
  return v;
}

GgufTensorInfo read_tensor_info(Cursor& c, size_t index) {
  GgufTensorInfo t;
  t.name = c.str(fmt::format("name of tensor {}", index));
  const std::string what = "tensor \"" + t.name + "\"";
  const uint32_t n_dims = c.pod<uint32_t>("n_dims of " + what);
  if (n_dims < 1 || n_dims > kGgufMaxDims)
    fail("{}: {} has {} dimensions (1 to {} supported)", c.file(), what, n_dims, kGgufMaxDims);
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne = c.pod<uint64_t>("ne of " + what);
    if (ne > uint64_t(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, int64_t(ne), &numel))
      fail("{}: {} has dimensions whose product overflows (ne[{}] = {})", c.file(), what, d, ne);
    t.ne.push_back(int64_t(ne));
  }
  t.ggml_type = c.pod<uint32_t>("type of " + what);
  if (!ggml_type_to_dtype(t.ggml_type, &t.dtype))
    fail("{}: {} has GGML type {}, which Seek does not read (F32 0, F16 1, Q4_0 2, Q8_0 8, "
         "Q4_K 12, Q6_K 14, BF16 30)", c.file(), what, t.ggml_type);
  const int64_t block = dtype_block(t.dtype);
  if (t.ne[0] % block)
    fail("{}: {} ({}) has rows of {} elements, not a multiple of its block of {}", c.file(), what,
         dtype_name(t.dtype), t.ne[0], block);
  int64_t nbytes;
  if (__builtin_mul_overflow(numel / block, int64_t(dtype_block_bytes(t.dtype)), &nbytes))
    fail("{}: {} is too large ({} elements)", c.file(), what, numel);
  t.nbytes = uint64_t(nbytes);
  t.offset = c.pod<uint64_t>("offset of " + what);
  return t;
}

}  // namespace

bool ggml_type_to_dtype(uint32_t id, DType* out) {
  for (const GgmlType& g : kGgmlTypes)
    if (g.id == id) {
      *out = g.dtype;
      return true;
    }
  return false;
}

uint32_t dtype_to_ggml_type(DType t) {
  for (const GgmlType& g : kGgmlTypes)
    if (g.dtype == t) return g.id;
  fail("GGUF has no tensor type for {}", dtype_name(t));
}

GgufHeader parse_gguf(const uint8_t* bytes, size_t size, std::string_view file) {
  Cursor c(bytes, size, file);
  GgufHeader h;
  c.need(4, "magic");
  if (std::memcmp(bytes, "GGUF", 4) != 0) fail("{}: not a GGUF file (no \"GGUF\" magic)", file);
  c.pod<uint32_t>("magic");
  h.version = c.pod<uint32_t>("version");
  if (h.version == 0x02000000u || h.version == 0x03000000u)
    fail("{}: big-endian GGUF is not supported", file);
  if (h.version != 2 && h.version != 3)
    fail("{}: GGUF version {} is not supported (2 or 3)", file, h.version);
  // Each tensor info takes >= 24 bytes (name length, n_dims, one ne, type, offset without the
  // rest), each metadata entry >= 13 (key length, type, one byte of value).
  const uint64_t n_tensors = c.pod<uint64_t>("tensor count");
  const uint64_t n_kv = c.count("metadata count", 13);
  if (n_tensors > c.left() / 24)
    fail("{}: tensor count is {}, more than the {} bytes left can hold", file, n_tensors, c.left());

  h.metadata.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str(fmt::format("key of metadata entry {}", k));
    GgufValue v = read_value(c, key);
    if (!h.by_key.emplace(key, h.metadata.size()).second)
      fail("{}: metadata key \"{}\" appears twice", file, key);
    h.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    if (a->type != GgufType::U32)
      fail("{}: general.alignment must be a u32, is {}", file, gguf_type_name(a->type));
    if (a->i == 0 || (a->i & (a->i - 1)) != 0 || a->i > (1 << 30))
      fail("{}: general.alignment {} is not a power of two (up to 2^30)", file, a->i);
    h.alignment = uint64_t(a->i);
  }

  h.tensors.reserve(size_t(n_tensors));
  std::map<std::string_view, size_t> names;
  for (uint64_t k = 0; k < n_tensors; ++k) h.tensors.push_back(read_tensor_info(c, size_t(k)));
  for (size_t k = 0; k < h.tensors.size(); ++k)
    if (!names.emplace(h.tensors[k].name, k).second)
      fail("{}: tensor \"{}\" appears twice", file, h.tensors[k].name);

  h.data_start = (uint64_t(c.pos()) + h.alignment - 1) / h.alignment * h.alignment;
  const uint64_t data_size = h.data_start <= size ? size - h.data_start : 0;
  if (!h.tensors.empty() && h.data_start > size)
    fail("{}: truncated GGUF: the data section would start at byte {}, the file has {}", file,
         h.data_start, size);
  std::vector<size_t> order(h.tensors.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const GgufTensorInfo& t = h.tensors[k];
    if (t.offset % h.alignment)
      fail("{}: tensor \"{}\" has offset {}, not a multiple of the alignment {}", file, t.name,
           t.offset, h.alignment);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail("{}: tensor \"{}\" ({} bytes at data offset {}) extends past the end of the file "
           "(data section {} bytes)", file, t.name, t.nbytes, t.offset, data_size);
    order[k] = k;
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return h.tensors[a].offset < h.tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& a = h.tensors[order[k - 1]];
    const GgufTensorInfo& b = h.tensors[order[k]];
    if (a.offset + a.nbytes > b.offset)
      fail("{}: tensors \"{}\" and \"{}\" overlap in the data section", file, a.name, b.name);
  }
  return h;
}

}  // namespace seek
