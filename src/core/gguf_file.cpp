// Opening a GGUF file (mapped or read) and writing one atomically.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"

namespace seek {

struct GgufFile::Impl {
  std::string path;
  void* base = nullptr;  // the whole file, mapped or read
  size_t len = 0;
  GgufHeader header;
  ~Impl() {
    if (base) ::munmap(base, len);
  }
};

namespace {

void read_all(int fd, uint8_t* dst, uint64_t n, const std::string& path, const ProgressFn& progress) {
  constexpr uint64_t kChunk = 64ull << 20;
  uint64_t off = 0;
  while (off < n) {
    ssize_t got = ::pread(fd, dst + off, std::min(kChunk, n - off), off_t(off));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("cannot read {} at byte {}: {}", path, off, std::strerror(errno));
    }
    if (got == 0) fail("{}: unexpected end of file at byte {} (file changed while loading?)", path, off);
    off += uint64_t(got);
    if (progress) progress(off, n);
  }
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[4] = {};
  const bool ok = ::pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  ::close(fd);
  return ok;
}

GgufFile GgufFile::open(const std::string& path, LoadMode mode, const ProgressFn& progress) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail("cannot stat {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("{}: not a regular file", path);
  const size_t size = size_t(st.st_size);
  if (size > 0) {
    if (mode == LoadMode::Mmap) {
      void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) fail("cannot map {}: {}", path, std::strerror(errno));
      impl->base = p, impl->len = size;
      ::madvise(p, size, MADV_HUGEPAGE);  // best effort, as for safetensors
      if (progress) progress(size, size);
    } else {
      void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) fail("cannot allocate {} bytes for {}: {}", size, path, std::strerror(errno));
      impl->base = p, impl->len = size;
      ::madvise(p, size, MADV_HUGEPAGE);
      read_all(fd, static_cast<uint8_t*>(p), size, path, progress);
      ::mprotect(p, size, PROT_READ);  // weights are immutable from here on
    }
  }
  impl->header = parse_gguf(static_cast<const uint8_t*>(impl->base), size, path);
  GgufFile f;
  f.impl_ = std::move(impl);
  return f;
}

GgufFile::GgufFile() = default;
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

const std::string& GgufFile::path() const { return impl_->path; }
const GgufHeader& GgufFile::header() const { return impl_->header; }
uint64_t GgufFile::file_size() const { return impl_->len; }
std::shared_ptr<const void> GgufFile::keep_alive() const { return impl_; }

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  return static_cast<const uint8_t*>(impl_->base) + impl_->header.data_start + t.offset;
}

// ---- Writer

namespace {

void put_bytes(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}
template <class T>
void put(std::string& out, T v) {
  put_bytes(out, &v, sizeof v);
}
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_scalar(std::string& out, GgufType t, int64_t i, double f) {
  switch (t) {
    case GgufType::U8: case GgufType::Bool: put<uint8_t>(out, uint8_t(i)); break;
    case GgufType::I8: put<int8_t>(out, int8_t(i)); break;
    case GgufType::U16: put<uint16_t>(out, uint16_t(i)); break;
    case GgufType::I16: put<int16_t>(out, int16_t(i)); break;
    case GgufType::U32: put<uint32_t>(out, uint32_t(i)); break;
    case GgufType::I32: put<int32_t>(out, int32_t(i)); break;
    case GgufType::U64: put<uint64_t>(out, uint64_t(i)); break;
    case GgufType::I64: put<int64_t>(out, i); break;
    case GgufType::F32: put<float>(out, float(f)); break;
    case GgufType::F64: put<double>(out, f); break;
    default: fail("GGUF writer: {} is not a scalar type", gguf_type_name(t));
  }
}

void put_value(std::string& out, const GgufValue& v) {
  put<uint32_t>(out, uint32_t(v.type));
  if (v.type == GgufType::String) {
    put_str(out, v.s);
  } else if (v.type != GgufType::Array) {
    put_scalar(out, v.type, v.i, v.f);
  } else {
    put<uint32_t>(out, uint32_t(v.elem));
    put<uint64_t>(out, v.array_size());
    for (const std::string& s : v.strs) put_str(out, s);
    for (int64_t i : v.ints) put_scalar(out, v.elem, i, 0.0);
    for (double f : v.reals) put_scalar(out, v.elem, 0, f);
  }
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

uint64_t GgufWriter::alignment() const {
  for (const auto& [k, v] : metadata_)
    if (k == "general.alignment") return uint64_t(v.i);
  return 32;
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  if (key == "general.alignment" &&
      (v.type != GgufType::U32 || v.i <= 0 || (v.i & (v.i - 1)) != 0))
    fail("GGUF writer: general.alignment must be a u32 power of two");
  for (auto& [k, old] : metadata_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  metadata_.emplace_back(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                            FillFn fill) {
  dtype_to_ggml_type(dtype);  // throws for types GGUF cannot hold
  if (ne.empty() || ne.size() > kGgufMaxDims)
    fail("GGUF writer: tensor {} has {} dimensions", name, ne.size());
  for (const Entry& e : tensors_)
    if (e.name == name) fail("GGUF writer: tensor {} added twice", name);
  int64_t numel = 1;
  for (int64_t d : ne) numel *= d;
  if (ne[0] % dtype_block(dtype))
    fail("GGUF writer: tensor {} rows are not whole {} blocks", name, dtype_name(dtype));
  tensors_.push_back({name, dtype, std::move(ne), uint64_t(dtype_bytes(dtype, numel)), std::move(fill)});
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                            const void* data, size_t nbytes) {
  auto copy = std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(data),
                                                     static_cast<const uint8_t*>(data) + nbytes);
  add_tensor(name, dtype, std::move(ne), [copy](uint8_t* dst) {
    std::memcpy(dst, copy->data(), copy->size());
  });
  if (tensors_.back().nbytes != nbytes)
    fail("GGUF writer: tensor {} has {} bytes, its shape needs {}", name, nbytes,
         tensors_.back().nbytes);
}

void GgufWriter::write(const std::string& path, const ProgressFn& progress) const {
  const uint64_t align = alignment();
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, metadata_.size());
  for (const auto& [k, v] : metadata_) {
    put_str(head, k);
    put_value(head, v);
  }
  uint64_t offset = 0, total = 0;
  for (const Entry& e : tensors_) {
    put_str(head, e.name);
    put<uint32_t>(head, uint32_t(e.ne.size()));
    for (int64_t d : e.ne) put<uint64_t>(head, uint64_t(d));
    put<uint32_t>(head, dtype_to_ggml_type(e.dtype));
    put<uint64_t>(head, offset);
    offset = align_up(offset + e.nbytes, align);
    total += e.nbytes;
  }
  head.resize(size_t(align_up(head.size(), align)), '\0');

  AtomicFile f(path);
  f.reserve(head.size() + offset);
  f.write_at(head.data(), head.size(), 0);
  std::vector<uint8_t> buf;
  uint64_t at = head.size(), done = 0;
  for (const Entry& e : tensors_) {
    buf.assign(size_t(align_up(e.nbytes, align)), 0);
    e.fill(buf.data());
    // The last tensor needs no padding after it; llama.cpp pads anyway, and so do we.
    f.write_at(buf.data(), buf.size(), at);
    at += buf.size();
    done += e.nbytes;
    if (progress) progress(done, total);
  }
  f.commit();
}

}  // namespace seek
