// The safetensors header: 8-byte little-endian length N, then N bytes of UTF-8 JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}.
// Everything in it is untrusted (this parser is fuzzed): every number is range-checked before use
// and every failure is a seek::Error naming the file and, where there is one, the tensor.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"

namespace seek {

namespace {

using json = nlohmann::json;

// Names, dtype strings and the parser's "last read" token come from the file: keep error messages
// a readable size.
std::string clip(std::string_view s, const char* quote = "") {
  constexpr size_t kMax = 200;
  if (s.size() <= kMax) return fmt::format("{0}{1}{0}", quote, s);
  size_t cut = kMax;
  while (cut > 0 && (uint8_t(s[cut]) & 0xc0) == 0x80) --cut;  // keep the UTF-8 sequence whole
  return fmt::format("{0}{1}...{0} ({2} bytes)", quote, s.substr(0, cut), s.size());
}
std::string shown(std::string_view s) { return clip(s, "\""); }

// A non-negative JSON integer that fits in int64_t (shape dims and offsets both must).
bool as_index(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  uint64_t u = v.get<uint64_t>();
  if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
  *out = u;
  return true;
}

const char* why_not_index(const json& v) {
  if (v.is_number_integer()) return v.is_number_unsigned() ? "too large" : "negative";
  if (v.is_number()) return "not an integer";
  return "not a number";
}

struct EntryParser {
  std::string_view file;
  uint64_t data_size;

  [[noreturn]] void bad(const std::string& name, std::string_view what) const {
    fail("{}: tensor {}: {}", file, shown(name), what);
  }

  TensorEntry parse(const std::string& name, const json& e) const {
    TensorEntry t;
    t.name = name;

    auto dt = e.find("dtype");
    if (dt == e.end()) bad(name, "missing \"dtype\"");
    if (!dt->is_string()) bad(name, "\"dtype\" must be a string");
    const auto& dts = dt->get_ref<const std::string&>();
    if (!parse_dtype(dts, &t.dtype))
      bad(name, fmt::format("unsupported dtype {} (supported: F32, BF16, F16, F8_E4M3, I32, I64)",
                            shown(dts)));

    auto sh = e.find("shape");
    if (sh == e.end()) bad(name, "missing \"shape\"");
    if (!sh->is_array()) bad(name, "\"shape\" must be an array of non-negative integers");
    uint64_t numel = 1;
    bool overflow = false, empty = false;  // a zero dimension makes any product of the others 0
    for (const auto& d : *sh) {
      uint64_t v;
      if (!as_index(d, &v)) bad(name, fmt::format("shape dimension is {}", why_not_index(d)));
      t.shape.push_back(int64_t(v));
      overflow |= __builtin_mul_overflow(numel, v, &numel);
      empty |= v == 0;
    }
    if (empty) numel = 0, overflow = false;

    auto off = e.find("data_offsets");
    if (off == e.end()) bad(name, "missing \"data_offsets\"");
    if (!off->is_array() || off->size() != 2)
      bad(name, "\"data_offsets\" must be [begin, end]");
    for (int i = 0; i < 2; ++i)
      if (!as_index((*off)[i], i == 0 ? &t.begin : &t.end))
        bad(name, fmt::format("data_offsets {} is {}", i == 0 ? "begin" : "end",
                              why_not_index((*off)[i])));
    if (t.begin > t.end)
      bad(name, fmt::format("data_offsets [{}, {}]: begin > end", t.begin, t.end));
    if (t.end > data_size)
      bad(name, fmt::format("data_offsets [{}, {}] run past the data section ({} bytes): "
                            "file truncated or header corrupt", t.begin, t.end, data_size));

    uint64_t nbytes;
    overflow |= __builtin_mul_overflow(numel, uint64_t(dtype_size(t.dtype)), &nbytes);
    if (overflow || nbytes != t.end - t.begin)
      bad(name, fmt::format("{} {} needs {} bytes but data_offsets [{}, {}] hold {}",
                            dtype_name(t.dtype), shape_str(t.shape),
                            overflow ? std::string("more than 2^64") : std::to_string(nbytes),
                            t.begin, t.end, t.end - t.begin));
    return t;
  }
};

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, uint64_t file_size,
                                           std::string_view file) {
  if (file_size < 8 || size < 8)
    fail("{}: not a safetensors file: {} bytes, too short for the 8-byte header length", file,
         std::min<uint64_t>(file_size, size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes[i];
  if (n == 0) fail("{}: header length is 0", file);
  if (n > file_size - 8)
    fail("{}: header length {} exceeds the {} bytes after it: truncated or not a safetensors file",
         file, n, file_size - 8);
  if (n > kSafetensorsMaxHeader)
    fail("{}: header length {} exceeds the {} byte limit", file, n, kSafetensorsMaxHeader);
  if (n > size - 8) fail("{}: only {} of the {} header bytes were read", file, size - 8, n);

  std::string_view text(reinterpret_cast<const char*>(bytes + 8), n);
  if (!valid_utf8(text)) fail("{}: header is not valid UTF-8", file);

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const EntryParser entries{file, file_size - h.data_start};

  // Each top-level entry is converted as soon as its object closes and then dropped from the DOM
  // (callback returns false), so a large header never exists as a whole json tree. The callback
  // also rejects what the DOM would hide: duplicate names (json keeps the last) and nesting
  // deeper than the format has (which would only cost stack in dump()).
  std::unordered_set<std::string> names;
  std::string key;  // current top-level key
  auto on_event = [&](int depth, json::parse_event_t ev, json& v) -> bool {
    using E = json::parse_event_t;
    switch (ev) {
      case E::object_start:
      case E::array_start:
        if (depth == 0 && ev == E::array_start) fail("{}: header must be a JSON object", file);
        if (depth == 1 && ev == E::array_start) {
          if (key == "__metadata__") fail("{}: __metadata__ must be an object", file);
          entries.bad(key, "entry must be an object");
        }
        if (depth >= 3) {
          if (key == "__metadata__") fail("{}: __metadata__ values must be strings", file);
          entries.bad(key, "nested too deeply");
        }
        return true;
      case E::key:
        if (depth == 1) {
          key = v.get<std::string>();
          if (!names.insert(key).second) fail("{}: tensor {} appears twice", file, shown(key));
        }
        return true;
      case E::value:
        if (depth == 0) fail("{}: header must be a JSON object", file);
        if (depth == 1) {
          if (key == "__metadata__") fail("{}: __metadata__ must be an object", file);
          entries.bad(key, "entry must be an object");
        }
        return true;
      case E::object_end:
        if (depth != 1) return true;
        if (key == "__metadata__") {
          for (auto& [k, val] : v.items()) {
            if (!val.is_string())
              fail("{}: __metadata__ value of {} must be a string", file, shown(k));
            h.metadata[k] = val.get<std::string>();
          }
        } else {
          h.tensors.push_back(entries.parse(key, v));
        }
        return false;
      case E::array_end:
        return true;
    }
    return true;
  };
  try {
    json rest = json::parse(text, on_event);  // only the emptied top-level object remains
    (void)rest;
  } catch (const json::parse_error& e) {
    fail("{}: header is not valid JSON (byte {} of the header): {}", file, e.byte, clip(e.what()));
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", file, clip(e.what()));
  }

  // The tensors must tile the data section exactly: no overlap (two tensors aliasing bytes), no
  // gap and no tail (bytes no tensor accounts for, as the safetensors spec requires).
  std::vector<TensorEntry>& ts = h.tensors;
  std::sort(ts.begin(), ts.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const TensorEntry* prev = nullptr;
  for (const TensorEntry& t : ts) {
    if (t.begin < pos)
      fail("{}: tensor {} [{}, {}] overlaps tensor {} [{}, {}]", file, shown(t.name), t.begin,
           t.end, shown(prev->name), prev->begin, prev->end);
    if (t.begin > pos)
      fail("{}: data section not fully covered: bytes [{}, {}) before tensor {} belong to no "
           "tensor", file, pos, t.begin, shown(t.name));
    pos = t.end;
    prev = &t;
  }
  if (pos != entries.data_size)
    fail("{}: data section not fully covered: bytes [{}, {}) after the last tensor belong to no "
         "tensor", file, pos, entries.data_size);
  return h;
}

}  // namespace seek
