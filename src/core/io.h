// Small file and JSON helpers shared by every module; errors name the file.
#pragma once
#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace seek {

std::string read_file(const std::string& path);  // throws "cannot read PATH: reason"
bool file_exists(const std::string& path);

// Writes all of [data, data + n) at `offset` of fd (several pwrites when large, EINTR retried);
// returns 0 or errno.
int pwrite_all(int fd, const void* data, size_t n, uint64_t offset);

// One atomic file write: the data goes to PATH.tmp.<pid>.<n>, which commit() fsyncs, renames
// over PATH and makes durable (the directory synced); destroyed uncommitted, the temporary file is
// removed. A crash leaves either the old or the new file, never a mix. Errors name PATH.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Reserves the blocks up front, so a full disk fails now rather than after minutes of work.
  void reserve(uint64_t size);
  void write_at(const void* data, size_t n, uint64_t offset);
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// An AtomicFile with `data` as its contents.
void write_file_atomic(const std::string& path, std::string_view data);

// Strict JSON parse: invalid UTF-8 or syntax errors become seek::Error naming `source`
// (and the byte offset).
nlohmann::json parse_json(std::string_view text, const std::string& source);

// Typed field access with errors that name the source and the field.
template <typename T>
T json_get(const nlohmann::json& j, const char* key, const std::string& source);
template <typename T>
T json_get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& source);

// What a JSON value is, for errors that say what a field holds instead: "null", "a boolean",
// "a number", "a string", "an array", "an object"; with `integers`, an integer is "an integer"
// (and only a float "a number").
const char* json_kind(const nlohmann::json& v, bool integers = false);

bool valid_utf8(std::string_view s);

}  // namespace seek
