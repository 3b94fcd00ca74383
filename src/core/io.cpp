#include "core/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"

namespace seek {

// POSIX rather than ifstream: errno is then meaningful, and a directory or an I/O error is a
// seek::Error instead of an std::ios_base::failure or a silently empty string.
std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot read {}: {}", path, std::strerror(errno));
  std::string s;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) s.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      fail("cannot read {}: {}", path, std::strerror(e));
    }
    if (n == 0) break;
    s.append(buf, size_t(n));
  }
  ::close(fd);
  return s;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int pwrite_all(int fd, const void* data, size_t n, uint64_t offset) {
  auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off_t(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
  return 0;
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  static std::atomic<unsigned> counter{0};
  tmp_ = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot write {}: {}", path, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::reserve(uint64_t size) {
  if (size == 0) return;
  if (::fallocate(fd_, 0, 0, off_t(size)) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
    fail("cannot write {} ({} bytes): {}", path_, size, std::strerror(errno));
}

void AtomicFile::write_at(const void* data, size_t n, uint64_t offset) {
  if (int e = pwrite_all(fd_, data, n, offset)) fail("cannot write {}: {}", path_, std::strerror(e));
}

void AtomicFile::commit() {
  // close() even when fsync fails, or the descriptor leaks.
  int rc = ::fsync(fd_), e = errno;
  if (::close(fd_) != 0 && rc == 0) rc = -1, e = errno;
  fd_ = -1;
  if (rc != 0) fail("cannot write {}: {}", path_, std::strerror(e));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("cannot rename {} to {}: {}", tmp_, path_, std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable.
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write_at(data.data(), data.size(), 0);
  f.commit();
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return false;
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
    i += len;
  }
  return true;
}

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  if (!valid_utf8(text)) fail("{}: not valid UTF-8 JSON", source);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON at byte {}: {}", source, e.byte, e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range 406 for 1e999
    fail("{}: invalid JSON: {}", source, e.what());
  }
}

namespace {
template <typename T>
const char* type_word() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else return "a string";
}
template <typename T>
bool is_type(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_integral_v<T>) {
    // Integers must fit int64_t; a float counts if it is integral and in range (2^63 is exact in
    // double, so the range test is exact and the cast below is defined).
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(INT64_MAX);
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    double d = v.get<double>();
    return d >= -0x1p63 && d < 0x1p63 && d == std::trunc(d);
  }
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else return v.is_string();
}
}  // namespace

const char* json_kind(const nlohmann::json& v, bool integers) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return integers ? "an integer" : "a number";
  }
}

template <typename T>
T json_get(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) fail("{}: missing field \"{}\"", source, key);
  const auto& v = j[key];
  if (!is_type<T>(v)) fail("{}: field \"{}\" must be {}, got {}", source, key, type_word<T>(), v.dump());
  // Through int64_t, not double: a double would round integers above 2^53.
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return v.is_number_float() ? T(v.get<double>()) : T(v.get<int64_t>());
  else return v.get<T>();
}

template <typename T>
T json_get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& source) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  return json_get<T>(j, key, source);
}

template bool json_get<bool>(const nlohmann::json&, const char*, const std::string&);
template int64_t json_get<int64_t>(const nlohmann::json&, const char*, const std::string&);
template double json_get<double>(const nlohmann::json&, const char*, const std::string&);
template std::string json_get<std::string>(const nlohmann::json&, const char*, const std::string&);
template bool json_get_or<bool>(const nlohmann::json&, const char*, bool, const std::string&);
template int64_t json_get_or<int64_t>(const nlohmann::json&, const char*, int64_t, const std::string&);
template double json_get_or<double>(const nlohmann::json&, const char*, double, const std::string&);
template std::string json_get_or<std::string>(const nlohmann::json&, const char*, std::string,
                                              const std::string&);

}  // namespace seek
