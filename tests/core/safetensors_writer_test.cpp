// SafetensorsWriter: the byte layout HF's safetensors writes, read back through our own parser and
// TensorStore; atomic replacement on every failure path; sharding with an index.
#include "core/safetensors_writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"

namespace seek {
namespace {

namespace fs = std::filesystem;

class SafetensorsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("seek_writer_{}_{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Files in the test directory other than `expected`: leftovers such as temporaries.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  return {p, p + t.nbytes};
}

template <typename T>
std::vector<uint8_t> raw(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST_F(SafetensorsWriterTest, HeaderIsExactlyHfLayout) {
  SafetensorsWriter w;
  const float x[2] = {1.0f, -2.0f};
  w.add("a", DType::F32, {2}, x, sizeof x);
  w.write(path("m.safetensors"));
  std::string file = read_file(path("m.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(file[size_t(i)]);
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(n % 8, 0u);
  ASSERT_GE(n, json.size());
  EXPECT_EQ(file.substr(8, n), json + std::string(n - json.size(), ' '));
  ASSERT_EQ(file.size(), 8 + n + 8);
  EXPECT_EQ(std::memcmp(file.data() + 8 + n, x, 8), 0);
}

TEST_F(SafetensorsWriterTest, RoundTripThroughTensorStore) {
  std::vector<float> f32 = {1.5f, -2.25f, 3.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xbf80, 0x4000, 0x0000, 0x7f80};
  std::vector<uint8_t> f8 = {0x38, 0xb8, 0x7e};
  std::vector<int64_t> i64 = {-1, 1ll << 40};
  std::vector<int32_t> i32 = {7, -7, 0, 1};
  SafetensorsWriter w;
  // Added smallest first: the file still places them by element size, so all are aligned.
  w.add("f8", DType::F8_E4M3, {3}, f8.data(), f8.size());
  w.add("model.layers.0.bf16", DType::BF16, {5}, bf16.data(), bf16.size() * 2);
  w.add_lazy("lazy.f32", DType::F32, {3, 1},
             [&](uint8_t* dst) { std::memcpy(dst, f32.data(), 12); });
  w.add("i64", DType::I64, {2}, i64.data(), 16);
  w.add("i32", DType::I32, {2, 2}, i32.data(), 16);
  w.add("empty", DType::BF16, {0, 4}, nullptr, 0);
  w.add("scalar", DType::F32, {}, f32.data(), 4);
  w.set_metadata("producer", "seek");
  EXPECT_EQ(w.total_bytes(), 3u + 10 + 12 + 16 + 16 + 0 + 4);
  w.write(path("model.safetensors"));

  std::string file = read_file(path("model.safetensors"));
  SafetensorsHeader h = parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()),
                                                 file.size(), file.size(), "model.safetensors");
  EXPECT_EQ(h.data_start % 8, 0u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.at("producer"), "seek");
  for (const TensorEntry& e : h.tensors) EXPECT_EQ(e.begin % dtype_size(e.dtype), 0u) << e.name;

  TensorStore s = TensorStore::open(dir_.string());
  ASSERT_EQ(s.tensors().size(), 7u);
  EXPECT_EQ(bytes_of(s.get("f8")), f8);
  EXPECT_EQ(bytes_of(s.get("model.layers.0.bf16")), raw(bf16));
  EXPECT_EQ(bytes_of(s.get("lazy.f32")), raw(f32));
  EXPECT_EQ(s.get("lazy.f32").shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(bytes_of(s.get("i64")), raw(i64));
  EXPECT_EQ(bytes_of(s.get("i32")), raw(i32));
  EXPECT_EQ(s.get("empty").nbytes, 0u);
  EXPECT_EQ(s.get("empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(s.get("scalar").shape.empty());
  EXPECT_EQ(s.get("scalar").dtype, DType::F32);
  EXPECT_EQ(s.get("f8").dtype, DType::F8_E4M3);
}

TEST_F(SafetensorsWriterTest, FillsRunInAddOrderAndEachWriteRefills) {
  SafetensorsWriter w;
  std::vector<std::string> calls;
  const std::pair<const char*, DType> tensors[] = {
      {"c.bf16", DType::BF16}, {"a.f32", DType::F32}, {"b.f8", DType::F8_E4M3}};
  for (auto [name, t] : tensors) {
    w.add_lazy(name, t, {4}, [&calls, name, t](uint8_t* dst) {
      calls.push_back(name);
      std::memset(dst, name[0], 4 * dtype_size(t));
    });
  }
  w.write(path("one.safetensors"));
  w.write(path("two.safetensors"));
  EXPECT_EQ(calls,
            (std::vector<std::string>{"c.bf16", "a.f32", "b.f8", "c.bf16", "a.f32", "b.f8"}));
  EXPECT_EQ(read_file(path("one.safetensors")), read_file(path("two.safetensors")));
  TensorStore s = TensorStore::open(path("one.safetensors"));
  EXPECT_EQ(bytes_of(s.get("b.f8")), std::vector<uint8_t>(4, 'b'));
  EXPECT_EQ(bytes_of(s.get("c.bf16")), std::vector<uint8_t>(8, 'c'));
}

TEST_F(SafetensorsWriterTest, RejectsBadTensors) {
  SafetensorsWriter w;
  float x[4] = {};
  w.add("x", DType::F32, {4}, x, 16);
  EXPECT_THROW(w.add("x", DType::F32, {4}, x, 16), Error);            // duplicate
  EXPECT_THROW(w.add("y", DType::F32, {4}, x, 12), Error);            // wrong byte count
  EXPECT_THROW(w.add("__metadata__", DType::F32, {1}, x, 4), Error);  // reserved
  EXPECT_THROW(w.add("", DType::F32, {1}, x, 4), Error);
  EXPECT_THROW(w.add_lazy("z", DType::F32, {-1}, [](uint8_t*) {}), Error);  // negative dim
  EXPECT_THROW(w.add_lazy("z", DType::F32, {1ll << 62, 8}, [](uint8_t*) {}), Error);  // overflow
  EXPECT_EQ(w.size(), 1u);
}

TEST_F(SafetensorsWriterTest, FailingFillLeavesOldFileAndNoTemporary) {
  const std::string p = path("model.safetensors");
  write_file_atomic(p, "previous contents");
  SafetensorsWriter w;
  std::vector<float> big(1 << 20, 1.0f);
  w.add("ok", DType::F32, {1 << 20}, big.data(), big.size() * 4);
  w.add_lazy("bad", DType::F32, {8}, [](uint8_t*) { throw std::runtime_error("generator broke"); });
  try {
    w.write(p);
    FAIL() << "write should have failed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("generator broke"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(p), "previous contents");
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsWriterTest, UnwritableDirectoryNamesThePath) {
  SafetensorsWriter w;
  float x = 1;
  w.add("x", DType::F32, {1}, &x, 4);
  const std::string missing = path("no/such/dir/model.safetensors");
  try {
    w.write(missing);
    FAIL() << "write should have failed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  if (::geteuid() != 0) {  // root ignores directory permissions
    fs::create_directories(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(w.write(path("ro/model.safetensors")), Error);
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
    EXPECT_TRUE(fs::is_empty(dir_ / "ro"));
  }
}

// A full disk, simulated with the file size limit: writes past it fail with EFBIG just as they
// would with ENOSPC (SIGXFSZ is ignored so the call fails instead of killing the test).
TEST_F(SafetensorsWriterTest, WriteErrorLeavesOldFileAndNoTemporary) {
  const std::string p = path("model.safetensors");
  write_file_atomic(p, "previous contents");
  std::vector<uint16_t> big(4 << 20, 0x3f80);  // 8 MiB
  SafetensorsWriter w;
  w.add("big", DType::BF16, {int64_t(big.size())}, big.data(), big.size() * 2);
  w.add_lazy("lazy", DType::BF16, {int64_t(big.size())},
             [&](uint8_t* dst) { std::memcpy(dst, big.data(), big.size() * 2); });

  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  std::string what;
  try {
    w.write(p);
  } catch (const Error& e) {
    what = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_NE(what.find("cannot write " + p), std::string::npos) << what;
  EXPECT_EQ(read_file(p), "previous contents");
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
}

// Tensors larger than the pipeline's queue, interleaved with small ones: the recycled buffers must
// never be handed out while still being written.
TEST_F(SafetensorsWriterTest, StreamsManyLargeLazyTensors) {
  SafetensorsWriter w;
  const int64_t big = (96 << 20) / 4;  // 96 MiB of F32
  for (int k = 0; k < 4; ++k) {
    w.add_lazy(fmt::format("big.{}", k), DType::F32, {big}, [k, big](uint8_t* dst) {
      auto* f = reinterpret_cast<float*>(dst);
      for (int64_t i = 0; i < big; ++i) f[i] = float(k * 1000 + i % 997);
    });
    w.add_lazy(fmt::format("small.{}", k), DType::BF16, {3},
               [k](uint8_t* dst) { std::memset(dst, k + 1, 6); });
  }
  uint64_t last = 0, calls = 0;
  w.write(path("model.safetensors"), [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last);
    EXPECT_EQ(total, w.total_bytes());
    last = done;
    ++calls;
  });
  EXPECT_EQ(last, w.total_bytes());
  EXPECT_GT(calls, 4u);
  TensorStore s = TensorStore::open(dir_.string(), LoadMode::Mmap);
  for (int k = 0; k < 4; ++k) {
    const auto* f = static_cast<const float*>(s.get(fmt::format("big.{}", k)).data);
    for (int64_t i = 0; i < big; i += 4099)
      ASSERT_EQ(f[i], float(k * 1000 + i % 997)) << k << " " << i;
    EXPECT_EQ(bytes_of(s.get(fmt::format("small.{}", k))), std::vector<uint8_t>(6, uint8_t(k + 1)));
  }
}

TEST_F(SafetensorsWriterTest, ShardsWithIndexAndRemovesStaleFiles) {
  SafetensorsWriter w;
  std::vector<std::vector<float>> data;
  for (int k = 0; k < 5; ++k) {
    data.emplace_back(100);
    std::iota(data.back().begin(), data.back().end(), float(k * 100));
    w.add(fmt::format("t{}", k), DType::F32, {10, 10}, data.back().data(), 400);
  }
  // A previous single-file checkpoint in the same directory.
  write_file_atomic(path("model.safetensors"), "stale");
  auto files = w.write_sharded(dir_.string(), 1000);  // 2 tensors (800 B) per shard
  EXPECT_EQ(files, (std::vector<std::string>{
                       "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                       "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  EXPECT_EQ(listing(), (std::vector<std::string>{
                           "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                           "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  nlohmann::json index = parse_json(read_file(path("model.safetensors.index.json")), "index");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), 2000u);
  EXPECT_EQ(index["weight_map"]["t0"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t1"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t2"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"].size(), 5u);
  TensorStore s = TensorStore::open(dir_.string());
  ASSERT_EQ(s.tensors().size(), 5u);
  for (int k = 0; k < 5; ++k)
    EXPECT_EQ(bytes_of(s.get(fmt::format("t{}", k))), raw(data[size_t(k)]));

  // Rewriting as one file removes the shards and the index.
  EXPECT_EQ(w.write_sharded(dir_.string(), 1 << 20), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(TensorStore::open(dir_.string()).tensors().size(), 5u);
}

TEST_F(SafetensorsWriterTest, TensorLargerThanShardGetsItsOwnShard) {
  SafetensorsWriter w;
  std::vector<float> a(10, 1.0f), b(1000, 2.0f), c(10, 3.0f);
  w.add("a", DType::F32, {10}, a.data(), 40);
  w.add("b", DType::F32, {1000}, b.data(), 4000);
  w.add("c", DType::F32, {10}, c.data(), 40);
  auto files = w.write_sharded(dir_.string(), 100);
  EXPECT_EQ(files.size(), 4u);  // a | b | c | index
  TensorStore s = TensorStore::open(dir_.string());
  EXPECT_EQ(bytes_of(s.get("b")), raw(b));
}

}  // namespace
}  // namespace seek
