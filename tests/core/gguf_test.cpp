// GGUF: the writer and reader round trip (both load modes), and the parser's answer to hostile
// files: each must be a seek::Error naming the file and the field, never an out-of-bounds read.
#include "core/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"

namespace seek {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("seek_gguf_test." + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// ---- A hand-made image builder, so each field can be broken on purpose -----------------------

struct Img {
  std::string b;
  template <class T>
  Img& pod(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Img& str(std::string_view s) {
    pod<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

struct TInfo {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;
};

// magic, version, counts, `kv` (already encoded, n_kv entries), tensor infos, padding to 32,
// then `data_bytes` of data.
std::string image(const std::vector<TInfo>& ts, const std::string& kv = "", uint64_t n_kv = 0,
                  uint64_t data_bytes = 0, uint32_t version = 3) {
  Img m;
  m.b = "GGUF";
  m.pod<uint32_t>(version).pod<uint64_t>(ts.size()).pod<uint64_t>(n_kv);
  m.b += kv;
  for (const TInfo& t : ts) {
    m.str(t.name).pod<uint32_t>(uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) m.pod<uint64_t>(d);
    m.pod<uint32_t>(t.type).pod<uint64_t>(t.offset);
  }
  m.b.resize((m.b.size() + 31) / 32 * 32, '\0');
  m.b.append(size_t(data_bytes), '\x01');
  return m.b;
}

std::string kv_u32(const std::string& key, uint32_t v) {
  Img m;
  m.str(key).pod<uint32_t>(uint32_t(GgufType::U32)).pod<uint32_t>(v);
  return m.b;
}

GgufHeader parse(const std::string& img) {
  return parse_gguf(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "bad.gguf");
}

// The parse fails with an error naming the file and containing every one of `parts`.
void expect_error(const std::string& img, std::initializer_list<std::string_view> parts) {
  try {
    parse(img);
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
    for (std::string_view p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

// ---- Round trip ------------------------------------------------------------------------------

TEST(Gguf, WriterAndReaderRoundTripEveryValueTypeAndTensor) {
  TempDir dir;
  const std::string path = dir.file("t.gguf");
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("deepseek2"));
  w.set("a.u8", GgufValue::integer(GgufType::U8, 200));
  w.set("a.i8", GgufValue::integer(GgufType::I8, -100));
  w.set("a.u16", GgufValue::integer(GgufType::U16, 60000));
  w.set("a.i16", GgufValue::integer(GgufType::I16, -30000));
  w.set("a.u32", GgufValue::u32(4000000000u));
  w.set("a.i32", GgufValue::i32(-2000000000));
  w.set("a.u64", GgufValue::u64(1ull << 40));
  w.set("a.i64", GgufValue::integer(GgufType::I64, -(1ll << 40)));
  w.set("a.f32", GgufValue::f32(0.25f));
  GgufValue f64;
  f64.type = GgufType::F64;
  f64.f = 1e-300;
  w.set("a.f64", f64);
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.strs", GgufValue::str_array({"", "Ġthe", "<｜end▁of▁sentence｜>"}));
  w.set("a.ints", GgufValue::int_array(GgufType::I32, {1, -2, 3}));
  GgufValue reals;
  reals.type = GgufType::Array;
  reals.elem = GgufType::F32;
  reals.reals = {0.5, -1.5};
  w.set("a.reals", reals);

  std::vector<float> f32 = {1.0f, -2.0f, 3.5f, 0.0f, 7.0f, 8.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0x4000, 0xc000};
  std::vector<uint8_t> q8(2 * 34, 0x11);   // 2 rows of one Q8_0 block
  std::vector<uint8_t> q4k(144, 0x22);     // 1 row of one Q4_K block
  w.add_tensor("m.f32", DType::F32, {3, 2}, f32.data(), f32.size() * 4);
  w.add_tensor("v.bf16", DType::BF16, {3}, bf16.data(), bf16.size() * 2);
  w.add_tensor("q.q8_0", DType::Q8_0, {32, 2}, q8.data(), q8.size());
  w.add_tensor("q.q4_k", DType::Q4_K, {256, 1, 1}, q4k.data(), q4k.size());
  w.write(path);

  for (LoadMode mode : {LoadMode::Mmap, LoadMode::Read}) {
    GgufFile f = GgufFile::open(path, mode);
    const GgufHeader& h = f.header();
    EXPECT_EQ(h.version, 3u);
    EXPECT_EQ(h.alignment, 32u);
    EXPECT_EQ(h.data_start % 32, 0u);
    EXPECT_EQ(h.metadata.size(), 15u);
    EXPECT_EQ(h.metadata[0].first, "general.architecture");
    EXPECT_EQ(f.find("general.architecture")->s, "deepseek2");
    EXPECT_EQ(f.find("a.u8")->i, 200);
    EXPECT_EQ(f.find("a.i8")->i, -100);
    EXPECT_EQ(f.find("a.u16")->i, 60000);
    EXPECT_EQ(f.find("a.i16")->i, -30000);
    EXPECT_EQ(f.find("a.u32")->i, 4000000000ll);
    EXPECT_EQ(f.find("a.i32")->i, -2000000000);
    EXPECT_EQ(f.find("a.u64")->i, 1ll << 40);
    EXPECT_EQ(f.find("a.i64")->i, -(1ll << 40));
    EXPECT_EQ(f.find("a.f32")->f, 0.25);
    EXPECT_EQ(f.find("a.f64")->f, 1e-300);
    EXPECT_EQ(f.find("a.bool")->i, 1);
    EXPECT_EQ(f.find("a.bool")->type, GgufType::Bool);
    EXPECT_EQ(f.find("a.strs")->strs,
              (std::vector<std::string>{"", "Ġthe", "<｜end▁of▁sentence｜>"}));
    EXPECT_EQ(f.find("a.ints")->ints, (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(f.find("a.ints")->elem, GgufType::I32);
    EXPECT_EQ(f.find("a.reals")->reals, (std::vector<double>{0.5, -1.5}));
    EXPECT_EQ(f.find("missing"), nullptr);

    ASSERT_EQ(h.tensors.size(), 4u);
    const GgufTensorInfo& m = h.tensors[0];
    EXPECT_EQ(m.name, "m.f32");
    EXPECT_EQ(m.dtype, DType::F32);
    EXPECT_EQ(m.ne, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(m.shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(std::memcmp(f.tensor_data(m), f32.data(), 24), 0);
    EXPECT_EQ(std::memcmp(f.tensor_data(h.tensors[1]), bf16.data(), 6), 0);
    EXPECT_EQ(h.tensors[1].dtype, DType::BF16);
    EXPECT_EQ(h.tensors[2].dtype, DType::Q8_0);
    EXPECT_EQ(h.tensors[2].nbytes, 68u);
    EXPECT_EQ(std::memcmp(f.tensor_data(h.tensors[2]), q8.data(), 68), 0);
    EXPECT_EQ(h.tensors[3].dtype, DType::Q4_K);
    EXPECT_EQ(h.tensors[3].shape(), (std::vector<int64_t>{1, 1, 256}));
    for (const GgufTensorInfo& t : h.tensors) EXPECT_EQ(t.offset % 32, 0u);
  }
  EXPECT_EQ(fs::directory_iterator(dir.path)->path().filename(), "t.gguf");  // no temporaries
}

TEST(Gguf, CustomAlignmentIsHonoured) {
  TempDir dir;
  GgufWriter w;
  w.set("general.alignment", GgufValue::u32(64));
  std::vector<float> a(3, 1.0f), b(5, 2.0f);
  w.add_tensor("a", DType::F32, {3}, a.data(), 12);
  w.add_tensor("b", DType::F32, {5}, b.data(), 20);
  w.write(dir.file("a.gguf"));
  GgufFile f = GgufFile::open(dir.file("a.gguf"));
  EXPECT_EQ(f.header().alignment, 64u);
  EXPECT_EQ(f.header().data_start % 64, 0u);
  EXPECT_EQ(f.header().tensors[1].offset, 64u);
  float x;
  std::memcpy(&x, f.tensor_data(f.header().tensors[1]), 4);
  EXPECT_EQ(x, 2.0f);
}

TEST(Gguf, AFailingFillLeavesNoFileBehind) {
  TempDir dir;
  GgufWriter w;
  w.add_tensor("a", DType::F32, {4}, [](uint8_t*) { fail("no data"); });
  EXPECT_THROW(w.write(dir.file("x.gguf")), Error);
  EXPECT_TRUE(fs::is_empty(dir.path));
}

TEST(Gguf, VersionTwoIsRead) {
  GgufHeader h = parse(image({{"t", {4}, 0, 0}}, kv_u32("k", 7), 1, 16, 2));
  EXPECT_EQ(h.version, 2u);
  EXPECT_EQ(h.find("k")->i, 7);
}

// ---- Hostile files ---------------------------------------------------------------------------

TEST(GgufHostile, EveryTruncationIsAnError) {
  const std::string good = image({{"a", {4}, 0, 0}, {"b", {2, 2}, 1, 32}},
                                 kv_u32("general.alignment", 32) + kv_u32("x", 1), 2, 40);
  ASSERT_NO_THROW(parse(good));
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    // A copy of exactly n bytes, so ASan sees any read past it.
    std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
    EXPECT_THROW(parse_gguf(cut.data(), cut.size(), "bad.gguf"), Error);
  }
}

TEST(GgufHostile, BadMagicAndVersions) {
  std::string img = image({});
  img[0] = 'X';
  expect_error(img, {"not a GGUF file"});
  expect_error(image({}, "", 0, 0, 1), {"version 1"});
  expect_error(image({}, "", 0, 0, 0x03000000u), {"big-endian"});
}

TEST(GgufHostile, HugeCountsAndLengths) {
  std::string img = image({});
  uint64_t huge = ~0ull >> 1;
  std::memcpy(&img[8], &huge, 8);  // tensor count
  expect_error(img, {"tensor count"});
  img = image({});
  std::memcpy(&img[16], &huge, 8);  // metadata count
  expect_error(img, {"metadata count"});

  Img s;
  s.pod<uint64_t>(~0ull);  // key length
  expect_error(image({}, s.b + std::string(32, 'x'), 1), {"key of metadata entry 0", "length"});

  Img v;
  v.str("tokenizer.ggml.tokens").pod<uint32_t>(uint32_t(GgufType::Array))
      .pod<uint32_t>(uint32_t(GgufType::String)).pod<uint64_t>(1ull << 60);
  expect_error(image({}, v.b, 1), {"tokenizer.ggml.tokens"});

  Img big;
  big.str("s").pod<uint32_t>(uint32_t(GgufType::String)).pod<uint64_t>(1ull << 40);
  expect_error(image({}, big.b, 1), {"metadata \"s\"", "length"});

  Img nested;
  nested.str("n").pod<uint32_t>(uint32_t(GgufType::Array)).pod<uint32_t>(uint32_t(GgufType::Array));
  expect_error(image({}, nested.b + std::string(16, '\0'), 1), {"nested array"});

  Img badtype;
  badtype.str("t").pod<uint32_t>(13).pod<uint32_t>(0);
  expect_error(image({}, badtype.b, 1), {"\"t\"", "unknown value type 13"});

  Img badbool;
  badbool.str("b").pod<uint32_t>(uint32_t(GgufType::Bool)).pod<uint8_t>(7);
  expect_error(image({}, badbool.b, 1), {"\"b\"", "bool"});

  expect_error(image({}, kv_u32("k", 1) + kv_u32("k", 2), 2), {"\"k\" appears twice"});
}

TEST(GgufHostile, BadAlignment) {
  expect_error(image({}, kv_u32("general.alignment", 0), 1), {"general.alignment"});
  expect_error(image({}, kv_u32("general.alignment", 48), 1), {"general.alignment", "48"});
  Img wrong;
  wrong.str("general.alignment").pod<uint32_t>(uint32_t(GgufType::U64)).pod<uint64_t>(32);
  expect_error(image({}, wrong.b, 1), {"general.alignment must be a u32"});
}

TEST(GgufHostile, BadTensorInfos) {
  expect_error(image({{"w", {4}, 9, 0}}, "", 0, 16), {"\"w\"", "GGML type 9"});
  expect_error(image({{"w", {4}, 0, 32}}, "", 0, 16), {"\"w\"", "extends past the end"});
  expect_error(image({{"w", {4}, 0, ~0ull & ~31ull}}, "", 0, 16), {"\"w\"", "extends past"});
  expect_error(image({{"w", {4}, 0, 8}}, "", 0, 64), {"\"w\"", "not a multiple of the alignment"});
  expect_error(image({{"a", {16}, 0, 0}, {"b", {4}, 0, 32}}, "", 0, 64), {"overlap"});
  expect_error(image({{"a", {4}, 0, 0}, {"a", {4}, 0, 32}}, "", 0, 64), {"\"a\" appears twice"});
  expect_error(image({{"w", {1ull << 32, 1ull << 32}, 0, 0}}, "", 0, 16), {"\"w\"", "overflow"});
  expect_error(image({{"w", {1ull << 62, 4}, 0, 0}}, "", 0, 16), {"\"w\"", "overflow"});
  expect_error(image({{"w", {1ull << 63}, 0, 0}}, "", 0, 16), {"\"w\"", "overflow"});
  expect_error(image({{"w", {1ull << 61}, 0, 0}}, "", 0, 16), {"\"w\"", "too large"});
  expect_error(image({{"w", {1, 1, 1, 1, 1}, 0, 0}}, "", 0, 16), {"\"w\"", "5 dimensions"});
  expect_error(image({{"w", {}, 0, 0}}, "", 0, 16), {"\"w\"", "0 dimensions"});
  expect_error(image({{"q", {16, 2}, 8, 0}}, "", 0, 64), {"\"q\"", "Q8_0", "block of 32"});
  // A tensor past the data section that starts beyond the file's end.
  std::string img = image({{"w", {4}, 0, 0}});
  expect_error(img, {"\"w\""});
}

TEST(GgufHostile, BlockTypedTensorsParse) {
  GgufHeader h = parse(image({{"q8", {64, 2}, 8, 0}, {"q6", {256, 1}, 14, 160},
                              {"q40", {32}, 2, 384}},
                             "", 0, 416));
  EXPECT_EQ(h.tensors[0].nbytes, 2u * 2 * 34);
  EXPECT_EQ(h.tensors[1].dtype, DType::Q6_K);
  EXPECT_EQ(h.tensors[1].nbytes, 210u);
  EXPECT_EQ(h.tensors[2].dtype, DType::Q4_0);
}

TEST(GgufHostile, OpenNamesTheFile) {
  TempDir dir;
  const std::string p = dir.file("empty.gguf");
  write_file_atomic(p, "");
  try {
    GgufFile::open(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.gguf"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GgufFile::open(dir.file("missing.gguf")), Error);
}

}  // namespace
}  // namespace seek
