#include "core/safetensors_writer.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/error.h"
#include "core/io.h"

namespace seek {

namespace {

namespace fs = std::filesystem;

struct Buffer {
  std::unique_ptr<uint8_t[]> p;
  size_t cap = 0;
};

// A background writer: the caller fills tensor k+1 while tensors ≤ k go to the page cache.
// At most kMaxQueuedBytes wait in the queue (or one tensor, if larger), which with the buffer
// being filled bounds memory to about two tensors. Finished buffers are kept for reuse (up to
// kMaxPooledBytes, most recent first): a fresh multi-MB allocation is a fresh mmap whose page
// faults cost about as much system time as generating the values.
class WritePipeline {
 public:
  static constexpr uint64_t kMaxQueuedBytes = 64ull << 20;
  static constexpr uint64_t kMaxPooledBytes = 256ull << 20;

  WritePipeline(int fd, const std::string& path) : fd_(fd), path_(path) {
    thread_ = std::thread([this] { run(); });
  }
  ~WritePipeline() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Buffer acquire(size_t n) {
    std::lock_guard lk(m_);
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->cap >= n && (best == free_.end() || it->cap < best->cap)) best = it;
    if (best == free_.end()) return Buffer{std::make_unique_for_overwrite<uint8_t[]>(n), n};
    Buffer b = std::move(*best);
    pooled_ -= b.cap;
    free_.erase(best);
    return b;
  }

  void submit(uint64_t offset, const uint8_t* data, size_t n, Buffer owned = {}) {
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] { return err_ || jobs_ == 0 || queued_ + n <= kMaxQueuedBytes; });
    if (err_) fail("cannot write {}: {}", path_, std::strerror(err_));
    ++jobs_;
    queued_ += n;
    queue_.push_back(Job{offset, data, n, std::move(owned)});
    cv_.notify_all();
  }

  void finish() {
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] { return jobs_ == 0; });
    if (err_) fail("cannot write {}: {}", path_, std::strerror(err_));
  }

 private:
  struct Job {
    uint64_t offset;
    const uint8_t* data;
    size_t n;
    Buffer owned;
  };

  void run() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Job job = std::move(queue_.front());
      queue_.pop_front();
      // After a failure (or when the caller gave up) the rest is dropped, not written.
      bool skip = err_ != 0 || stop_;
      lk.unlock();
      int e = skip ? 0 : pwrite_all(fd_, job.data, job.n, job.offset);
      lk.lock();
      if (e && !err_) err_ = e;
      --jobs_;
      queued_ -= job.n;
      recycle(std::move(job.owned));
      cv_.notify_all();
    }
  }

  void recycle(Buffer b) {  // under m_
    if (!b.p) return;
    pooled_ += b.cap;
    free_.push_front(std::move(b));
    while (free_.size() > 1 && pooled_ > kMaxPooledBytes) {  // drop the least recently used
      pooled_ -= free_.back().cap;
      free_.pop_back();
    }
  }

  int fd_;
  std::string path_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::deque<Buffer> free_;
  uint64_t jobs_ = 0, queued_ = 0, pooled_ = 0;
  int err_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// Removes what an earlier checkpoint in `dir` left that loaders would pick up next to the files
// just written: shards of another split (a directory listing finds every *.safetensors), the
// single file, the index. `keep` names the files just written.
void remove_stale(const fs::path& dir, const std::vector<std::string>& keep) {
  static const std::regex shard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    std::string name = f.path().filename().string();
    bool ours = name == "model.safetensors" || name == "model.safetensors.index.json" ||
                std::regex_match(name, shard);
    if (ours && std::find(keep.begin(), keep.end(), name) == keep.end()) fs::remove(f.path(), ec);
  }
}

std::string shape_json(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

}  // namespace

// Reports bytes handed to the writer, throttled to every 16 MiB and the end.
struct SafetensorsWriter::Progress {
  const ProgressFn* fn;
  uint64_t total, done = 0, reported = 0;
  void add(uint64_t n) {
    done += n;
    if (*fn && (done - reported >= (16u << 20) || done == total)) {
      reported = done;
      (*fn)(done, total);
    }
  }
};

uint64_t SafetensorsWriter::check_entry(const std::string& name, DType dtype,
                                        const std::vector<int64_t>& shape) {
  if (name.empty() || name == "__metadata__")
    fail("safetensors writer: invalid tensor name \"{}\"", name);
  if (!valid_utf8(name)) fail("safetensors writer: tensor name is not valid UTF-8");
  if (names_.count(name)) fail("safetensors writer: tensor {} added twice", name);
  uint64_t bytes = dtype_size(dtype);
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(bytes, uint64_t(d), &bytes))
      fail("safetensors writer: tensor {}: invalid shape {}", name, shape_json(shape));
  return bytes;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data, size_t nbytes) {
  uint64_t want = check_entry(name, dtype, shape);
  if (nbytes != want)
    fail("safetensors writer: tensor {}: {} {} needs {} bytes, got {}", name, dtype_name(dtype),
         shape_json(shape), want, nbytes);
  const auto* p = static_cast<const uint8_t*>(data);
  entries_.push_back(
      Entry{name, dtype, std::move(shape), want, std::vector<uint8_t>(p, p + nbytes), {}});
  names_.insert(name);
  total_bytes_ += want;
}

void SafetensorsWriter::add_lazy(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                 FillFn fill) {
  uint64_t want = check_entry(name, dtype, shape);
  if (!fill) fail("safetensors writer: tensor {}: empty fill function", name);
  entries_.push_back(Entry{name, dtype, std::move(shape), want, {}, std::move(fill)});
  names_.insert(name);
  total_bytes_ += want;
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write_file(const std::vector<size_t>& which, const std::string& path,
                                   Progress& progress) const {
  // File order: element size descending, stable, so every tensor is naturally aligned.
  std::vector<size_t> order = which;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(entries_[a].dtype) > dtype_size(entries_[b].dtype);
  });
  std::vector<uint64_t> offset(entries_.size());
  nlohmann::json meta(metadata_);
  std::string header = "{\"__metadata__\":" + meta.dump();
  uint64_t pos = 0;
  for (size_t i : order) {
    const Entry& e = entries_[i];
    offset[i] = pos;
    header += fmt::format(",{}:{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}",
                          nlohmann::json(e.name).dump(), dtype_name(e.dtype), shape_json(e.shape),
                          pos, pos + e.nbytes);
    pos += e.nbytes;
  }
  header += "}";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  const uint64_t data_start = 8 + header.size();

  AtomicFile tmp(path);
  tmp.reserve(data_start + pos);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  tmp.write_at(len, 8, 0);
  tmp.write_at(header.data(), header.size(), 8);
  {
    WritePipeline pipe(tmp.fd(), path);
    for (size_t i : which) {  // add order: fills may depend on earlier fills
      const Entry& e = entries_[i];
      if (e.nbytes == 0) continue;
      uint64_t at = data_start + offset[i];
      if (e.fill) {
        Buffer b = pipe.acquire(e.nbytes);
        try {
          e.fill(b.p.get());
        } catch (const std::exception& ex) {
          fail("cannot write {}: producing tensor {}: {}", path, e.name, ex.what());
        }
        const uint8_t* p = b.p.get();
        pipe.submit(at, p, e.nbytes, std::move(b));
      } else {
        pipe.submit(at, e.data.data(), e.nbytes);
      }
      progress.add(e.nbytes);
    }
    pipe.finish();
  }
  tmp.commit();
}

void SafetensorsWriter::write(const std::string& path, const ProgressFn& progress) const {
  std::vector<size_t> all(entries_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  Progress p{&progress, total_bytes_};
  write_file(all, path, p);
  if (progress && total_bytes_ == 0) progress(0, 0);
}

std::vector<std::string> SafetensorsWriter::write_sharded(const std::string& dir,
                                                          uint64_t max_shard_bytes,
                                                          const ProgressFn& progress) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create directory {}: {}", dir, ec.message());
  const fs::path d(dir);
  const std::string single = (d / "model.safetensors").string();
  const std::string index = (d / "model.safetensors.index.json").string();
  Progress p{&progress, total_bytes_};

  if (total_bytes_ <= max_shard_bytes) {
    write(single, progress);
    remove_stale(d, {"model.safetensors"});
    return {"model.safetensors"};
  }

  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    uint64_t n = entries_[i].nbytes;
    if (!shards.back().empty() && in_shard + n > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += n;
  }
  std::vector<std::string> files;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    write_file(shards[s], (d / file).string(), p);
    for (size_t i : shards[s]) weight_map[entries_[i].name] = file;
    files.push_back(file);
  }
  nlohmann::json j = {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", weight_map}};
  write_file_atomic(index, j.dump(2) + "\n");
  files.push_back("model.safetensors.index.json");
  remove_stale(d, files);
  return files;
}

}  // namespace seek
