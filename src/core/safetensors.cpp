// TensorStore: finds a checkpoint's files, validates every header and the index before any bulk
// I/O (a mistake in shard 163 fails in milliseconds, not after reading 600 GB), then maps or reads
// each file's data section exactly once.
#include "core/safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/io.h"

namespace seek {

namespace {

constexpr size_t kHugePage = 2u << 20;
// Progress granularity; large enough that the per-call overhead is invisible at disk speed.
constexpr size_t kReadChunk = 64u << 20;

// A munmap-on-destruction address range: a file mapping (Mmap) or anonymous memory (Read).
class Region {
 public:
  Region() = default;
  Region(void* p, size_t n) : p_(p), n_(n) {}
  Region(Region&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Region& operator=(Region&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~Region() {
    if (p_) ::munmap(p_, n_);
  }
  uint8_t* data() const { return static_cast<uint8_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly n bytes at offset `off`; a short file is an error, not a partial result.
void read_at(int fd, uint8_t* dst, uint64_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    ssize_t got = ::pread(fd, dst, std::min<uint64_t>(n, 1u << 30), off_t(off));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("cannot read {} at byte {}: {}", path, off, std::strerror(errno));
    }
    if (got == 0)
      fail("{}: unexpected end of file at byte {} (file changed while loading?)", path, off);
    dst += got, off += uint64_t(got), n -= uint64_t(got);
  }
}

// Anonymous memory starting on a 2 MiB boundary so transparent huge pages can back all of it
// (a GEMM streaming 10 GB of weights otherwise takes a TLB miss every 4 kB).
Region alloc_huge(uint64_t bytes, const std::string& path) {
  if (bytes == 0) return {};
  size_t len = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  size_t over = len + kHugePage;
  void* p = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    fail("cannot allocate {} bytes for {}: {}", bytes, path, std::strerror(errno));
  uintptr_t a = uintptr_t(p), b = (a + kHugePage - 1) / kHugePage * kHugePage;
  if (b > a) ::munmap(p, b - a);
  if (a + over > b + len) ::munmap(reinterpret_cast<void*>(b + len), a + over - (b + len));
  ::madvise(reinterpret_cast<void*>(b), len, MADV_HUGEPAGE);  // best effort: THP may be off
  return Region(reinterpret_cast<void*>(b), len);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The files of a checkpoint, and for an index the file each tensor must be found in.
struct Sources {
  std::vector<std::string> files;
  std::string index;  // empty without an index
  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor -> shard path
};

Sources from_index(const std::string& index) {
  Sources s;
  s.index = index;
  nlohmann::json j = parse_json(read_file(index), index);
  auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (!j.is_object() || wm == j.end() || !wm->is_object())
    fail("{}: needs a \"weight_map\" object mapping tensor names to shard files", index);
  if (wm->empty()) fail("{}: weight_map is empty", index);
  size_t slash = index.rfind('/');
  std::string base = slash == std::string::npos ? "." : index.substr(0, slash);
  std::set<std::string> shards;
  for (auto& [name, file] : wm->items()) {
    if (!file.is_string() || file.get_ref<const std::string&>().empty())
      fail("{}: weight_map entry for tensor \"{}\" must be a file name", index, name);
    std::string path = base + "/" + file.get<std::string>();
    if (shards.insert(path).second && !file_exists(path))
      fail("{}: shard {} (listed for tensor \"{}\") does not exist", index, path, name);
    s.weight_map.emplace_back(name, path);
  }
  s.files.assign(shards.begin(), shards.end());  // 00001-of-N, 00002-of-N, ...
  return s;
}

Sources find_sources(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail("cannot open model {}: {}", path, std::strerror(errno));
  if (S_ISREG(st.st_mode)) {
    if (ends_with(path, ".json")) return from_index(path);
    return Sources{{path}, {}, {}};
  }
  if (!S_ISDIR(st.st_mode)) fail("cannot open model {}: not a file or directory", path);
  // The index is explicit about which files belong to the checkpoint, so it wins over a listing.
  std::string index = path + "/model.safetensors.index.json";
  if (file_exists(index)) return from_index(index);
  Sources s;
  DIR* d = ::opendir(path.c_str());
  if (!d) fail("cannot list {}: {}", path, std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name[0] == '.' || !ends_with(name, ".safetensors")) continue;
    std::string f = path + "/" + name;
    struct stat fs;
    if (::stat(f.c_str(), &fs) == 0 && S_ISREG(fs.st_mode)) s.files.push_back(f);
  }
  ::closedir(d);
  if (s.files.empty())
    fail("no .safetensors files in {} (expected model.safetensors or "
         "model.safetensors.index.json with its shards)", path);
  std::sort(s.files.begin(), s.files.end());
  return s;
}

struct Shard {
  std::string path;
  Fd fd;
  uint64_t file_size = 0;
  SafetensorsHeader header;
  uint64_t data_size() const { return file_size - header.data_start; }
};

Shard open_shard(const std::string& path) {
  Shard s;
  s.path = path;
  s.fd = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (s.fd.get() < 0) fail("cannot open {}: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(s.fd.get(), &st) != 0) fail("cannot stat {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("{}: not a regular file", path);
  s.file_size = uint64_t(st.st_size);
  // Read the length, then (only if it is plausible) the header; the parser reports the rest.
  std::vector<uint8_t> head(std::min<uint64_t>(s.file_size, 8));
  read_at(s.fd.get(), head.data(), head.size(), 0, path);
  if (head.size() == 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | head[i];
    if (n <= s.file_size - 8 && n <= kSafetensorsMaxHeader) {
      head.resize(8 + n);
      read_at(s.fd.get(), head.data() + 8, n, 8, path);
    }
  }
  s.header = parse_safetensors_header(head.data(), head.size(), s.file_size, path);
  return s;
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Tensor::shape_str() const { return seek::shape_str(shape); }

struct TensorStore::Impl {
  std::string dir;
  LoadMode mode = LoadMode::Read;
  std::vector<std::string> files;
  std::vector<Tensor> tensors;
  std::map<std::string, size_t, std::less<>> by_name;  // -> index into tensors
  std::vector<Region> regions;
  std::vector<std::shared_ptr<const void>> owners;  // adopt()
  uint64_t total_bytes = 0;
};

TensorStore TensorStore::adopt(std::string dir, LoadMode mode, std::vector<Tensor> tensors,
                               std::vector<std::shared_ptr<const void>> owners) {
  TensorStore store;
  Impl& m = *store.impl_;
  m.dir = std::move(dir);
  m.mode = mode;
  m.owners = std::move(owners);
  m.tensors = std::move(tensors);
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const Tensor& t = m.tensors[i];
    if (!m.by_name.emplace(t.name, i).second) fail("{}: tensor \"{}\" appears twice", m.dir, t.name);
    m.total_bytes += t.nbytes;
    if (std::find(m.files.begin(), m.files.end(), t.file) == m.files.end()) m.files.push_back(t.file);
  }
  return store;
}

TensorStore TensorStore::open(const std::string& dir, LoadMode mode, const ProgressFn& progress,
                              const std::function<bool(std::string_view)>& keep) {
  Sources src = find_sources(dir);

  // Phase 1: every header, every name, the index. No tensor bytes are touched yet.
  std::vector<Shard> shards;
  shards.reserve(src.files.size());
  std::map<std::string_view, size_t> owner;  // tensor name -> shard
  uint64_t total = 0;
  for (const std::string& f : src.files) {
    shards.push_back(open_shard(f));
    const Shard& s = shards.back();
    for (const TensorEntry& t : s.header.tensors) {
      auto [it, fresh] = owner.emplace(t.name, shards.size() - 1);
      if (!fresh)
        fail("tensor \"{}\" is in both {} and {}", t.name, shards[it->second].path, s.path);
    }
    total += s.data_size();
  }
  for (const auto& [name, path] : src.weight_map) {
    auto it = owner.find(name);
    if (it == owner.end())
      fail("{}: tensor \"{}\" is listed in shard {} but that file does not contain it", src.index,
           name, path);
    if (shards[it->second].path != path)
      fail("{}: tensor \"{}\" is listed in shard {} but is in {}", src.index, name, path,
           shards[it->second].path);
  }

  // A stage's share: only the kept tensors, each file's packed in storage order.
  if (keep) {
    total = 0;
    for (Shard& s : shards) {
      std::erase_if(s.header.tensors, [&](const TensorEntry& t) { return !keep(t.name); });
      for (const TensorEntry& t : s.header.tensors) total += t.end - t.begin;
    }
  }

  // Phase 2: the bytes, one file at a time.
  TensorStore store;
  Impl& m = *store.impl_;
  m.dir = dir;
  m.mode = mode;
  uint64_t done = 0;
  for (Shard& s : shards) {
    if (keep && s.header.tensors.empty()) continue;
    const uint8_t* data = nullptr;
    if (keep && mode == LoadMode::Read) {
      // The kept tensors only, each 64-byte aligned in one region.
      uint64_t bytes = 0;
      for (const TensorEntry& e : s.header.tensors) bytes = (bytes + 63) / 64 * 64 + (e.end - e.begin);
      m.regions.push_back(alloc_huge(bytes, s.path));
      uint8_t* dst = m.regions.back().data();
      uint64_t at = 0;
      for (TensorEntry& e : s.header.tensors) {
        at = (at + 63) / 64 * 64;
        const uint64_t n = e.end - e.begin;
        for (uint64_t off = 0; off < n; off += kReadChunk) {
          const uint64_t c = std::min<uint64_t>(kReadChunk, n - off);
          read_at(s.fd.get(), dst + at + off, c, s.header.data_start + e.begin + off, s.path);
          done += c;
          if (progress) progress(done, total);
        }
        e.end = at + n;  // now offsets into the region
        e.begin = at;
        at += n;
      }
      if (dst) ::mprotect(dst, (bytes + kHugePage - 1) / kHugePage * kHugePage, PROT_READ);
      data = dst;
    } else if (mode == LoadMode::Mmap) {
      // No MADV_WILLNEED: on a checkpoint larger than RAM it would evict what it just read.
      void* p = ::mmap(nullptr, s.file_size, PROT_READ, MAP_PRIVATE, s.fd.get(), 0);
      if (p == MAP_FAILED) fail("cannot map {}: {}", s.path, std::strerror(errno));
      // Best effort: where the kernel can back read-only file mappings with huge pages
      // (CONFIG_READ_ONLY_THP_FOR_FS) this saves a TLB miss every 4 kB of weights streamed.
      ::madvise(p, s.file_size, MADV_HUGEPAGE);
      m.regions.emplace_back(p, s.file_size);
      data = m.regions.back().data() + s.header.data_start;
      done += s.data_size();
      if (progress) progress(done, total);
    } else {
      m.regions.push_back(alloc_huge(s.data_size(), s.path));
      uint8_t* dst = m.regions.back().data();
      for (uint64_t off = 0; off < s.data_size(); off += kReadChunk) {
        uint64_t n = std::min<uint64_t>(kReadChunk, s.data_size() - off);
        read_at(s.fd.get(), dst + off, n, s.header.data_start + off, s.path);
        done += n;
        if (progress) progress(done, total);
      }
      // Weights are immutable from here on; a stray write now faults instead of corrupting them.
      if (dst) ::mprotect(dst, (s.data_size() + kHugePage - 1) / kHugePage * kHugePage, PROT_READ);
      data = dst;
    }
    for (TensorEntry& e : s.header.tensors) {
      Tensor t;
      t.name = std::move(e.name);
      t.dtype = e.dtype;
      t.shape = std::move(e.shape);
      t.data = data ? data + e.begin : nullptr;
      t.nbytes = size_t(e.end - e.begin);
      t.file = s.path;
      t.aligned = uintptr_t(t.data) % dtype_size(t.dtype) == 0;
      m.total_bytes += t.nbytes;
      m.tensors.push_back(std::move(t));
    }
    m.files.push_back(s.path);
  }
  for (size_t i = 0; i < m.tensors.size(); ++i) m.by_name.emplace(m.tensors[i].name, i);
  return store;
}

TensorStore::TensorStore() : impl_(std::make_unique<Impl>()) {}
TensorStore::TensorStore(TensorStore&&) noexcept = default;
TensorStore& TensorStore::operator=(TensorStore&&) noexcept = default;
TensorStore::~TensorStore() = default;

const Tensor* TensorStore::find(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? nullptr : &impl_->tensors[it->second];
}

const Tensor& TensorStore::get(std::string_view name) const {
  if (const Tensor* t = find(name)) return *t;
  fail("tensor \"{}\" not found in {}", name, impl_->dir);
}

const std::vector<Tensor>& TensorStore::tensors() const { return impl_->tensors; }
uint64_t TensorStore::total_bytes() const { return impl_->total_bytes; }
const std::string& TensorStore::dir() const { return impl_->dir; }
const std::vector<std::string>& TensorStore::files() const { return impl_->files; }
LoadMode TensorStore::mode() const { return impl_->mode; }

}  // namespace seek
