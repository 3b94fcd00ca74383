// TensorStore on the real-layout fixtures (both load modes), and the loader's answer to every
// malformed checkpoint we could think of: each must be a seek::Error that names the file and,
// where there is one, the tensor.
#include "core/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"

namespace seek {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModels = std::string(SEEK_FIXTURES) + "/models";

uint32_t u32_at(const void* p, size_t i) {
  uint32_t v;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + 4 * i, 4);
  return v;
}

// ---- fixtures --------------------------------------------------------------------------------

struct FixtureCase {
  const char* dir;
  size_t tensors, files;
  uint64_t bytes;  // sum of the data sections (= index total_size for the sharded ones)
};

class FixtureTest : public testing::TestWithParam<FixtureCase> {};

TEST_P(FixtureTest, BothModesLoadTheSameBytes) {
  const FixtureCase& c = GetParam();
  const std::string dir = kModels + "/" + c.dir;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  TensorStore read = TensorStore::open(dir, LoadMode::Read,
                                       [&](uint64_t d, uint64_t t) { calls.emplace_back(d, t); });
  TensorStore mapped = TensorStore::open(dir, LoadMode::Mmap);
  EXPECT_EQ(read.mode(), LoadMode::Read);
  EXPECT_EQ(mapped.mode(), LoadMode::Mmap);
  EXPECT_EQ(read.tensors().size(), c.tensors);
  EXPECT_EQ(read.files().size(), c.files);
  EXPECT_EQ(read.total_bytes(), c.bytes);
  EXPECT_EQ(mapped.total_bytes(), c.bytes);
  EXPECT_EQ(read.dir(), dir);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(c.bytes, c.bytes));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GT(calls[i].first, calls[i - 1].first);

  ASSERT_EQ(mapped.tensors().size(), c.tensors);
  for (const Tensor& t : read.tensors()) {
    const Tensor& m = mapped.get(t.name);
    EXPECT_EQ(t.dtype, m.dtype) << t.name;
    EXPECT_EQ(t.shape, m.shape) << t.name;
    EXPECT_EQ(t.file, m.file) << t.name;
    ASSERT_EQ(t.nbytes, m.nbytes) << t.name;
    EXPECT_EQ(size_t(t.numel()) * dtype_size(t.dtype), t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, m.data, t.nbytes), 0) << t.name;
    // The fixtures store tensors in element-size order, so every offset is naturally aligned and
    // the 2 MiB aligned read buffer keeps it so.
    EXPECT_TRUE(t.aligned) << t.name;
    EXPECT_EQ(uintptr_t(t.data) % dtype_size(t.dtype), 0u) << t.name;
    EXPECT_EQ(&read.get(t.name), read.find(t.name));
  }
}

// A pipeline stage's share (`keep`): only the kept tensors, with the same bytes as a whole
// load, in both modes; a shard holding none of them is left out.
TEST_P(FixtureTest, KeepLoadsOnlyTheSelectedTensors) {
  const FixtureCase& c = GetParam();
  const std::string dir = kModels + "/" + c.dir;
  const TensorStore whole = TensorStore::open(dir, LoadMode::Read);
  const auto keep = [](std::string_view n) { return n.find("layers.1.") != std::string_view::npos; };
  size_t want = 0;
  uint64_t want_bytes = 0;
  std::set<std::string> want_files;
  for (const Tensor& t : whole.tensors())
    if (keep(t.name)) ++want, want_bytes += t.nbytes, want_files.insert(t.file);
  ASSERT_GT(want, 0u);
  for (LoadMode mode : {LoadMode::Read, LoadMode::Mmap}) {
    uint64_t last = 0;
    const TensorStore part = TensorStore::open(dir, mode, [&](uint64_t d, uint64_t) { last = d; }, keep);
    EXPECT_EQ(part.tensors().size(), want);
    EXPECT_EQ(part.total_bytes(), want_bytes);
    EXPECT_EQ(part.files().size(), want_files.size());
    if (mode == LoadMode::Read) EXPECT_EQ(last, want_bytes);  // only their bytes were read
    for (const Tensor& t : part.tensors()) {
      ASSERT_TRUE(keep(t.name)) << t.name;
      const Tensor& w = whole.get(t.name);
      ASSERT_EQ(t.nbytes, w.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(t.data, w.data, t.nbytes), 0) << t.name;
      EXPECT_TRUE(t.aligned) << t.name;
    }
    EXPECT_EQ(part.find("model.embed_tokens.weight"), nullptr);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureTest,
                         testing::Values(FixtureCase{"v3-tiny", 207, 1, 3822016},
                                         FixtureCase{"v3-tiny-fp8", 383, 2, 3676528},
                                         FixtureCase{"v2-lite-tiny", 131, 2, 3578880}),
                         [](const auto& info) {
                           std::string s = info.param.dir;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

TEST(Safetensors, V3TinyKnownTensors) {
  for (LoadMode mode : {LoadMode::Read, LoadMode::Mmap}) {
    TensorStore s = TensorStore::open(kModels + "/v3-tiny", mode);
    const Tensor& emb = s.get("model.embed_tokens.weight");
    EXPECT_EQ(emb.dtype, DType::BF16);
    EXPECT_EQ(emb.shape_str(), "[1000, 128]");
    EXPECT_EQ(emb.numel(), 128000);
    EXPECT_EQ(emb.nbytes, 256000u);
    EXPECT_TRUE(emb.file.ends_with("v3-tiny/model.safetensors"));
    const Tensor& bias = s.get("model.layers.1.mlp.gate.e_score_correction_bias");
    EXPECT_EQ(bias.dtype, DType::F32);
    EXPECT_EQ(bias.shape, std::vector<int64_t>{16});
    EXPECT_EQ(u32_at(bias.data, 0), 0x3e5b037au);  // 0.21388045 (read with Python)
    // Offset 0 of the data section: in Read mode that is the 2 MiB aligned buffer start.
    if (mode == LoadMode::Read) {
      EXPECT_EQ(uintptr_t(bias.data) % (2 << 20), 0u);
    }
    EXPECT_EQ(s.find("model.layers.99.nothing"), nullptr);
  }
}

TEST(Safetensors, V3Fp8ScaleInAnotherShard) {
  for (LoadMode mode : {LoadMode::Read, LoadMode::Mmap}) {
    TensorStore s = TensorStore::open(kModels + "/v3-tiny-fp8", mode);
    const Tensor& w = s.get("model.layers.0.self_attn.q_a_proj.weight");
    const Tensor& sc = s.get("model.layers.0.self_attn.q_a_proj.weight_scale_inv");
    EXPECT_EQ(w.dtype, DType::F8_E4M3);
    EXPECT_EQ(w.shape_str(), "[96, 192]");
    EXPECT_TRUE(w.file.ends_with("model-00001-of-00002.safetensors"));
    EXPECT_EQ(sc.dtype, DType::F32);
    EXPECT_EQ(sc.shape_str(), "[1, 2]");
    EXPECT_TRUE(sc.file.ends_with("model-00002-of-00002.safetensors"));
    EXPECT_EQ(u32_at(sc.data, 0), 0x3a216e4du);
    EXPECT_EQ(u32_at(sc.data, 1), 0x3a032f18u);
    EXPECT_EQ(s.get("model.layers.0.mlp.gate_proj.weight_scale_inv").shape_str(), "[3, 2]");
    EXPECT_EQ(s.get("model.layers.0.mlp.down_proj.weight").dtype, DType::F8_E4M3);
    EXPECT_EQ(s.get("model.layers.3.eh_proj.weight").dtype, DType::BF16);
  }
}

TEST(Safetensors, V2LiteShapes) {
  TensorStore s = TensorStore::open(kModels + "/v2-lite-tiny", LoadMode::Mmap);
  EXPECT_EQ(s.get("model.layers.0.self_attn.q_proj.weight").shape_str(), "[192, 192]");
  EXPECT_EQ(s.get("model.layers.0.self_attn.kv_b_proj.weight").shape_str(), "[224, 64]");
  EXPECT_EQ(s.find("model.layers.0.self_attn.q_a_proj.weight"), nullptr);
  const Tensor& emb = s.get("model.embed_tokens.weight");
  uint16_t first;
  std::memcpy(&first, emb.data, 2);
  EXPECT_EQ(first, 0xbf77u);
}

TEST(Safetensors, OpenSingleFileAndIndexPaths) {
  TensorStore one = TensorStore::open(kModels + "/v3-tiny/model.safetensors");
  EXPECT_EQ(one.tensors().size(), 207u);
  TensorStore shard = TensorStore::open(kModels + "/v3-tiny-fp8/model-00002-of-00002.safetensors");
  EXPECT_EQ(shard.tensors().size(), 126u);
  TensorStore ix = TensorStore::open(kModels + "/v3-tiny-fp8/model.safetensors.index.json");
  EXPECT_EQ(ix.tensors().size(), 383u);
}

TEST(Safetensors, StoreIsMovable) {
  TensorStore a = TensorStore::open(kModels + "/v3-tiny", LoadMode::Read);
  const void* p = a.get("model.norm.weight").data;
  TensorStore b = std::move(a);
  EXPECT_EQ(b.get("model.norm.weight").data, p);
  TensorStore c;
  EXPECT_TRUE(c.tensors().empty());
  c = std::move(b);
  EXPECT_EQ(c.get("model.norm.weight").data, p);
}

// ---- hostile files ---------------------------------------------------------------------------

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(n >> (8 * i));
  return s;
}
std::string st_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}
std::string st_file(const json& header, size_t data_bytes) {
  return st_file(header.dump(), std::string(data_bytes, '\x11'));
}
json entry(const char* dtype, std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
  return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

class Hostile : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/seek_st_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string put(const std::string& name, const std::string& bytes) {
    std::string p = dir_ + "/" + name;
    write_file_atomic(p, bytes);
    return p;
  }
  // The message of the seek::Error that loading `path` throws, in both modes (they share the
  // validation, but each mode must refuse).
  std::string load_error(const std::string& path) {
    std::string msg[2];
    for (int m = 0; m < 2; ++m) {
      try {
        TensorStore::open(path, m ? LoadMode::Mmap : LoadMode::Read);
        ADD_FAILURE() << "loading " << path << " did not throw";
      } catch (const Error& e) {
        msg[m] = e.what();
      }
    }
    EXPECT_EQ(msg[0], msg[1]);
    return msg[0];
  }
  void expect_error(const std::string& name, const std::string& bytes,
                    std::initializer_list<const char*> parts) {
    std::string msg = load_error(put(name, bytes));
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    for (const char* part : parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
  std::string dir_;
};

TEST_F(Hostile, ValidEdgeCases) {
  // Scalars, empty tensors, padded header, metadata, a misaligned BF16 tensor.
  json h = {{"__metadata__", {{"format", "pt"}}},
            {"a", entry("F8_E4M3", {1}, 0, 1)},
            {"b", entry("BF16", {2}, 1, 5)},
            {"s", entry("F32", {}, 5, 9)},
            {"z", entry("F32", {0, 7}, 9, 9)},
            {"zz", entry("I64", {3, 0}, 9, 9)}};
  std::string header = h.dump();
  header.append(8 - header.size() % 8, ' ');
  std::string path =
      put("edge.safetensors", st_file(header, "\x01\x02\x03\x04\x05\x06\x07\x08\x09"));
  for (LoadMode mode : {LoadMode::Read, LoadMode::Mmap}) {
    TensorStore s = TensorStore::open(path, mode);
    EXPECT_EQ(s.tensors().size(), 5u);
    EXPECT_EQ(s.total_bytes(), 9u);
    EXPECT_EQ(s.get("s").numel(), 1);
    EXPECT_EQ(s.get("s").shape_str(), "[]");
    EXPECT_EQ(s.get("z").numel(), 0);
    EXPECT_EQ(s.get("z").nbytes, 0u);
    EXPECT_EQ(*static_cast<const uint8_t*>(s.get("b").data), 2);
    EXPECT_FALSE(s.get("b").aligned);  // offset 1 (data section starts 8-aligned in Mmap)
    EXPECT_TRUE(s.get("a").aligned);
  }
  std::string img = read_file(path);
  SafetensorsHeader parsed = parse_safetensors_header(
      reinterpret_cast<const uint8_t*>(img.data()), img.size(), img.size(), path);
  EXPECT_EQ(parsed.metadata.at("format"), "pt");
  EXPECT_EQ(parsed.data_start, 8 + header.size());
  EXPECT_EQ(parsed.tensors.front().name, "a");  // storage order
}

TEST_F(Hostile, ReadCrossesChunkBoundaries) {
  // 130 MiB of data (a sparse file, so it costs no disk): Read mode fills it in 64 MiB chunks.
  // Markers either side of each chunk boundary catch an offset slip between chunks.
  const uint64_t n = 130ull << 20;
  std::string header = json{{"big", entry("F8_E4M3", {int64_t(n)}, 0, n)}}.dump();
  std::string path = put("big.safetensors", le64(header.size()) + header);
  const uint64_t start = 8 + header.size();
  ASSERT_EQ(::truncate(path.c_str(), off_t(start + n)), 0);
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const uint64_t marks[] = {0, (64ull << 20) - 1, 64ull << 20, (128ull << 20) - 1, 128ull << 20,
                            n - 1};
  for (uint64_t m : marks) {
    std::fseek(f, long(start + m), SEEK_SET);
    std::fputc(int(m % 251) + 1, f);
  }
  std::fclose(f);
  std::vector<uint64_t> done;
  TensorStore s = TensorStore::open(path, LoadMode::Read,
                                    [&](uint64_t d, uint64_t total) {
                                      EXPECT_EQ(total, n);
                                      done.push_back(d);
                                    });
  EXPECT_EQ(done, (std::vector<uint64_t>{64ull << 20, 128ull << 20, n}));
  const auto* p = static_cast<const uint8_t*>(s.get("big").data);
  for (uint64_t m : marks) EXPECT_EQ(p[m], m % 251 + 1) << m;
  EXPECT_EQ(p[1], 0);
  EXPECT_EQ(p[n - 2], 0);
}

TEST_F(Hostile, EmptyHeaderNoData) {
  TensorStore s = TensorStore::open(put("empty.safetensors", st_file("{}", "")));
  EXPECT_TRUE(s.tensors().empty());
}

TEST_F(Hostile, ShortFile) {
  expect_error("short.safetensors", "\x05\x00\x00", {"too short"});
  expect_error("zero.safetensors", "", {"too short"});
}

TEST_F(Hostile, HeaderLength) {
  expect_error("len0.safetensors", le64(0) + "{}", {"header length is 0"});
  expect_error("lenbig.safetensors", le64(1000) + "{}", {"header length 1000 exceeds"});
  expect_error("lenhuge.safetensors", le64(~0ull) + "{}", {"exceeds"});
}

TEST(SafetensorsHeader, LengthAboveLimitAndShortBuffer) {
  std::string img = le64(kSafetensorsMaxHeader + 1) + "{}";
  auto* p = reinterpret_cast<const uint8_t*>(img.data());
  try {
    parse_safetensors_header(p, img.size(), 1ull << 40, "big.safetensors");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte limit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("big.safetensors"), std::string::npos) << e.what();
  }
  img = le64(100) + "{}";
  p = reinterpret_cast<const uint8_t*>(img.data());
  EXPECT_THROW(parse_safetensors_header(p, img.size(), 1000, "f"), Error);
}

TEST_F(Hostile, HeaderNotUtf8) {
  expect_error("utf8.safetensors", st_file(std::string("{\"a\xff\": 1}"), ""), {"UTF-8"});
  // Overlong encoding of '"' and a UTF-16 surrogate: both invalid UTF-8.
  expect_error("overlong.safetensors", st_file(std::string("{\"\xc0\xa2\": 1}"), ""), {"UTF-8"});
  expect_error("surrogate.safetensors", st_file(std::string("{\"\xed\xa0\x80\": 1}"), ""),
               {"UTF-8"});
}

TEST_F(Hostile, InvalidJson) {
  expect_error("json.safetensors", st_file(std::string("{\"a\": "), ""), {"not valid JSON"});
  expect_error("trail.safetensors", st_file(std::string("{} x"), ""), {"not valid JSON"});
  expect_error("num.safetensors", st_file(std::string("{\"a\": {\"shape\": [1e999]}}"), ""),
               {"not valid JSON"});
  expect_error("top.safetensors", st_file(std::string("[1, 2]"), ""), {"must be a JSON object"});
  expect_error("scalar.safetensors", st_file(std::string("7"), ""), {"must be a JSON object"});
}

TEST_F(Hostile, EntryShape) {
  expect_error("notobj.safetensors", st_file(json{{"w.weight", 3}}, 0), {"\"w.weight\"", "object"});
  expect_error("arr.safetensors", st_file(json{{"w.weight", {1, 2}}}, 0),
               {"\"w.weight\"", "object"});
  expect_error("deep.safetensors",
               st_file(std::string(R"({"w.weight": {"shape": [[[1]]]}})"), ""),
               {"\"w.weight\"", "nested too deeply"});
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error("deeper.safetensors", st_file(deep, ""), {"must be a JSON object"});
}

TEST_F(Hostile, Dtype) {
  expect_error("dtype.safetensors", st_file(json{{"w.weight", entry("F64", {2}, 0, 16)}}, 16),
               {"\"w.weight\"", "unsupported dtype \"F64\""});
  json h = {{"w.weight", {{"shape", {1}}, {"data_offsets", {0, 4}}}}};
  expect_error("nodtype.safetensors", st_file(h, 4), {"\"w.weight\"", "missing \"dtype\""});
  h["w.weight"]["dtype"] = 5;
  expect_error("intdtype.safetensors", st_file(h, 4), {"\"w.weight\"", "\"dtype\" must be"});
}

TEST_F(Hostile, ShapeValues) {
  expect_error("neg.safetensors", st_file(json{{"w.weight", entry("F32", {-1, 4}, 0, 16)}}, 16),
               {"\"w.weight\"", "negative"});
  json h = {{"w.weight", {{"dtype", "F32"}, {"shape", {1.5}}, {"data_offsets", {0, 4}}}}};
  expect_error("float.safetensors", st_file(h, 4), {"\"w.weight\"", "not an integer"});
  h["w.weight"]["shape"] = "4";
  expect_error("str.safetensors", st_file(h, 4), {"\"w.weight\"", "\"shape\" must be"});
  h["w.weight"].erase("shape");
  expect_error("noshape.safetensors", st_file(h, 4), {"\"w.weight\"", "missing \"shape\""});
  // 2^32 · 2^32 overflows uint64: must be caught, not wrap to 0 and match [0, 0].
  expect_error("ovf.safetensors",
               st_file(json{{"w.weight", entry("F32", {1ll << 32, 1ll << 32}, 0, 0)}}, 0),
               {"\"w.weight\"", "more than 2^64"});
  expect_error("ovf2.safetensors",
               st_file(json{{"w.weight", entry("I64", {1ll << 61}, 0, 0)}}, 0),
               {"\"w.weight\"", "more than 2^64"});
  h["w.weight"]["shape"] = {~0ull};
  expect_error("huge.safetensors", st_file(h, 4), {"\"w.weight\"", "too large"});
}

TEST_F(Hostile, Offsets) {
  expect_error("mismatch.safetensors",
               st_file(json{{"w.weight", entry("BF16", {3, 4}, 0, 20)}}, 20),
               {"\"w.weight\"", "BF16 [3, 4] needs 24 bytes but data_offsets [0, 20] hold 20"});
  expect_error("beyond.safetensors", st_file(json{{"w.weight", entry("F32", {4}, 0, 16)}}, 8),
               {"\"w.weight\"", "past the data section (8 bytes)"});
  expect_error("order.safetensors", st_file(json{{"w.weight", entry("F32", {0}, 8, 4)}}, 8),
               {"\"w.weight\"", "begin > end"});
  json h = {{"w.weight", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0}}}}};
  expect_error("one.safetensors", st_file(h, 4), {"\"w.weight\"", "[begin, end]"});
  h["w.weight"]["data_offsets"] = {0, -4};
  expect_error("negoff.safetensors", st_file(h, 4), {"\"w.weight\"", "end is negative"});
  h["w.weight"].erase("data_offsets");
  expect_error("nooff.safetensors", st_file(h, 4), {"\"w.weight\"", "missing \"data_offsets\""});
}

TEST_F(Hostile, TruncatedFile) {
  std::string good = st_file(json{{"a.weight", entry("F32", {4}, 0, 16)},
                                  {"b.weight", entry("F32", {4}, 16, 32)}}, 32);
  expect_error("trunc.safetensors", good.substr(0, good.size() - 3),
               {"\"b.weight\"", "truncated"});
}

TEST_F(Hostile, OverlapGapTail) {
  expect_error("overlap.safetensors",
               st_file(json{{"a.weight", entry("F32", {4}, 0, 16)},
                            {"b.weight", entry("F32", {2}, 8, 16)}}, 16),
               {"\"a.weight\"", "\"b.weight\"", "overlaps"});
  expect_error("same.safetensors",
               st_file(json{{"a.weight", entry("F32", {4}, 0, 16)},
                            {"b.weight", entry("F32", {4}, 0, 16)}}, 16),
               {"\"a.weight\"", "\"b.weight\"", "overlaps"});
  expect_error("gap.safetensors",
               st_file(json{{"a.weight", entry("F32", {2}, 0, 8)},
                            {"b.weight", entry("F32", {2}, 12, 20)}}, 20),
               {"\"b.weight\"", "not fully covered", "[8, 12)"});
  expect_error("tail.safetensors", st_file(json{{"a.weight", entry("F32", {2}, 0, 8)}}, 12),
               {"not fully covered", "[8, 12)"});
}

TEST_F(Hostile, DuplicateInOneHeader) {
  std::string h = R"({"w.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                  R"( "w.weight": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  expect_error("dup.safetensors", st_file(h, std::string(8, '\0')), {"\"w.weight\"", "twice"});
}

TEST_F(Hostile, Metadata) {
  expect_error("meta.safetensors",
               st_file(json{{"__metadata__", {{"format", 1}}}}, 0), {"__metadata__", "\"format\""});
  expect_error("meta2.safetensors", st_file(json{{"__metadata__", "pt"}}, 0), {"__metadata__"});
  expect_error("meta3.safetensors", st_file(json{{"__metadata__", {{"a", {1}}}}}, 0),
               {"__metadata__"});
}

TEST_F(Hostile, MissingPaths) {
  std::string msg = load_error(dir_ + "/nope");
  EXPECT_NE(msg.find(dir_ + "/nope"), std::string::npos) << msg;
  msg = load_error(dir_);  // exists, but holds no checkpoint
  EXPECT_NE(msg.find("no .safetensors files in " + dir_), std::string::npos) << msg;
  TensorStore s = TensorStore::open(kModels + "/v3-tiny");
  try {
    s.get("model.layers.7.mlp.gate.weight");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"model.layers.7.mlp.gate.weight\" not found in " +
                                         kModels + "/v3-tiny"),
              std::string::npos) << e.what();
  }
}

// ---- shards and the index --------------------------------------------------------------------

class Sharded : public Hostile {
 protected:
  void SetUp() override {
    Hostile::SetUp();
    put("m-1.safetensors", st_file(json{{"a.weight", entry("F32", {2}, 0, 8)},
                                        {"b.weight", entry("BF16", {2}, 8, 12)}}, 12));
    put("m-2.safetensors", st_file(json{{"c.weight", entry("F32", {1}, 0, 4)}}, 4));
  }
  std::string index(const json& weight_map) {
    return put("model.safetensors.index.json",
               json{{"metadata", {{"total_size", 16}}}, {"weight_map", weight_map}}.dump());
  }
};

TEST_F(Sharded, DirectoryWithoutIndexLoadsAllFiles) {
  TensorStore s = TensorStore::open(dir_);
  EXPECT_EQ(s.tensors().size(), 3u);
  ASSERT_EQ(s.files().size(), 2u);
  EXPECT_EQ(s.files()[0], dir_ + "/m-1.safetensors");
  EXPECT_EQ(s.get("c.weight").file, dir_ + "/m-2.safetensors");
}

TEST_F(Sharded, IndexSelectsItsShards) {
  put("stray.safetensors", st_file(json{{"a.weight", entry("F32", {1}, 0, 4)}}, 4));
  index({{"a.weight", "m-1.safetensors"}, {"b.weight", "m-1.safetensors"},
         {"c.weight", "m-2.safetensors"}});
  TensorStore s = TensorStore::open(dir_);  // the stray file is not in the index: ignored
  EXPECT_EQ(s.tensors().size(), 3u);
  EXPECT_EQ(s.total_bytes(), 16u);
}

TEST_F(Sharded, ShardTensorsMissingFromIndexAreStillLoaded) {
  index({{"a.weight", "m-1.safetensors"}, {"c.weight", "m-2.safetensors"}});
  EXPECT_NE(TensorStore::open(dir_).find("b.weight"), nullptr);
}

TEST_F(Sharded, IndexNamesMissingShard) {
  index({{"a.weight", "m-1.safetensors"}, {"x.weight", "m-9.safetensors"}});
  std::string msg = load_error(dir_);
  for (const char* s : {"model.safetensors.index.json", "m-9.safetensors", "\"x.weight\"",
                        "does not exist"})
    EXPECT_NE(msg.find(s), std::string::npos) << msg;
}

TEST_F(Sharded, IndexListsTensorAbsentFromShard) {
  index({{"a.weight", "m-1.safetensors"}, {"q.weight", "m-2.safetensors"}});
  std::string msg = load_error(dir_);
  for (const char* s : {"model.safetensors.index.json", "m-2.safetensors", "\"q.weight\"",
                        "does not contain"})
    EXPECT_NE(msg.find(s), std::string::npos) << msg;
}

TEST_F(Sharded, IndexListsTensorInWrongShard) {
  index({{"a.weight", "m-2.safetensors"}, {"c.weight", "m-1.safetensors"}});
  std::string msg = load_error(dir_);
  for (const char* s : {"model.safetensors.index.json", "m-1.safetensors", "m-2.safetensors"})
    EXPECT_NE(msg.find(s), std::string::npos) << msg;
}

TEST_F(Sharded, MalformedIndex) {
  std::string p = put("model.safetensors.index.json", R"({"weight_map": [1]})");
  EXPECT_NE(load_error(dir_).find("weight_map"), std::string::npos);
  put("model.safetensors.index.json", R"({"weight_map": {"a.weight": 3}})");
  EXPECT_NE(load_error(dir_).find("\"a.weight\""), std::string::npos);
  put("model.safetensors.index.json", R"({"weight_map": {}})");
  EXPECT_NE(load_error(dir_).find("empty"), std::string::npos);
  put("model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_NE(load_error(dir_).find(p), std::string::npos);
}

TEST_F(Sharded, DuplicateAcrossShards) {
  put("m-3.safetensors", st_file(json{{"b.weight", entry("BF16", {2}, 0, 4)}}, 4));
  std::string msg = load_error(dir_);
  for (const char* s : {"\"b.weight\"", "m-1.safetensors", "m-3.safetensors"})
    EXPECT_NE(msg.find(s), std::string::npos) << msg;
  // Through an index too: both shards listed, the tensor in both.
  index({{"a.weight", "m-1.safetensors"}, {"b.weight", "m-3.safetensors"}});
  msg = load_error(dir_);
  for (const char* s : {"\"b.weight\"", "m-1.safetensors", "m-3.safetensors"})
    EXPECT_NE(msg.find(s), std::string::npos) << msg;
}

TEST_F(Sharded, BadShardIsNamed) {
  put("m-2.safetensors", le64(0));
  EXPECT_NE(load_error(dir_).find("m-2.safetensors: header length is 0"), std::string::npos);
}

}  // namespace
}  // namespace seek
