// File and JSON helpers: atomic writes, strict UTF-8 JSON, typed field access whose errors name
// the source and the field.
#include "core/io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"

namespace seek {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class IoTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/seek_io_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string dir_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no seek::Error thrown";
  return "";
}

TEST_F(IoTest, WriteFileAtomicWritesAndReplaces) {
  std::string p = dir_ + "/out.bin";
  std::string data("a\0b\xff", 4);
  write_file_atomic(p, data);
  EXPECT_EQ(read_file(p), data);
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});  // no temp file left behind

  std::string big(3 << 20, 'x');
  write_file_atomic(p, big);
  EXPECT_EQ(read_file(p), big);
  write_file_atomic(p, "short");  // replaced, not overwritten in place: no tail of the old one
  EXPECT_EQ(read_file(p), "short");
  write_file_atomic(p, "");
  EXPECT_EQ(read_file(p), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
}

TEST_F(IoTest, WriteFileAtomicFailureNamesPath) {
  std::string p = dir_ + "/missing/out.json";
  EXPECT_NE(error_of([&] { write_file_atomic(p, "x"); }).find(p), std::string::npos);
  EXPECT_TRUE(listing().empty());
}

TEST_F(IoTest, ReadFileErrors) {
  std::string p = dir_ + "/absent.txt";
  std::string msg = error_of([&] { read_file(p); });
  EXPECT_NE(msg.find("cannot read " + p), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { read_file(dir_); }).find(dir_), std::string::npos);
  EXPECT_FALSE(file_exists(p));
  EXPECT_TRUE(file_exists(dir_));
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9"));                // é
  EXPECT_TRUE(valid_utf8("\xe2\x82\xac"));            // €
  EXPECT_TRUE(valid_utf8("\xef\xbf\xbf"));            // U+FFFF
  EXPECT_TRUE(valid_utf8("\xf0\x9f\x98\x80"));        // 😀
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));        // U+10FFFF
  EXPECT_TRUE(valid_utf8(std::string_view("\0", 1)));
  EXPECT_FALSE(valid_utf8("\x80"));                   // lone continuation
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));               // overlong '/'
  EXPECT_FALSE(valid_utf8("\xc1\xbf"));
  EXPECT_FALSE(valid_utf8("\xe0\x9f\xbf"));           // overlong 3-byte
  EXPECT_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));       // overlong 4-byte
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));           // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));       // U+110000
  EXPECT_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));                   // truncated
  EXPECT_FALSE(valid_utf8("\xe2\x82"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f\x98"));
  EXPECT_FALSE(valid_utf8("\xe2\x28\xa1"));           // bad continuation
  EXPECT_FALSE(valid_utf8("\xff"));
}

TEST(ParseJson, StrictAndNamed) {
  EXPECT_EQ(parse_json(R"({"a": [1, 2]})", "cfg.json")["a"][1], 2);
  std::string msg = error_of([] { parse_json("{\"a\": \"\xff\"}", "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;

  msg = error_of([] { parse_json("{\"a\": 1,, }", "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json: invalid JSON at byte 9"), std::string::npos) << msg;
  msg = error_of([] { parse_json("", "empty.json"); });
  EXPECT_NE(msg.find("empty.json"), std::string::npos) << msg;
  // Number overflow is an out_of_range, not a parse_error, in nlohmann: still a seek::Error.
  msg = error_of([] { parse_json("{\"a\": 1e999}", "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
}

TEST(JsonGet, TypedFields) {
  json j = parse_json(R"({"n": 7, "f": 2.0, "x": 2.5, "s": "hi", "b": true, "z": null,
                          "big": 9007199254740993, "neg": -3, "u": 18446744073709551615,
                          "huge": 1e300})", "config.json");
  EXPECT_EQ(json_get<int64_t>(j, "n", "config.json"), 7);
  EXPECT_EQ(json_get<int64_t>(j, "f", "config.json"), 2);
  EXPECT_EQ(json_get<int64_t>(j, "neg", "config.json"), -3);
  EXPECT_EQ(json_get<int64_t>(j, "big", "config.json"), 9007199254740993);  // not via double
  EXPECT_EQ(json_get<double>(j, "x", "config.json"), 2.5);
  EXPECT_EQ(json_get<double>(j, "n", "config.json"), 7.0);
  EXPECT_EQ(json_get<std::string>(j, "s", "config.json"), "hi");
  EXPECT_TRUE(json_get<bool>(j, "b", "config.json"));
  EXPECT_EQ(json_get_or<int64_t>(j, "missing", 5, "config.json"), 5);
  EXPECT_EQ(json_get_or<int64_t>(j, "z", 6, "config.json"), 6);  // null = absent
  EXPECT_EQ(json_get_or<int64_t>(j, "n", 6, "config.json"), 7);

  auto expect = [&](const std::function<void()>& f, const std::string& part) {
    std::string msg = error_of(f);
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  expect([&] { json_get<int64_t>(j, "x", "config.json"); }, "field \"x\" must be an integer");
  expect([&] { json_get<int64_t>(j, "s", "config.json"); }, "field \"s\" must be an integer");
  expect([&] { json_get<int64_t>(j, "u", "config.json"); }, "field \"u\" must be an integer");
  expect([&] { json_get<int64_t>(j, "huge", "config.json"); }, "field \"huge\"");
  expect([&] { json_get<std::string>(j, "n", "config.json"); }, "field \"n\" must be a string");
  expect([&] { json_get<bool>(j, "n", "config.json"); }, "field \"n\" must be a boolean");
  expect([&] { json_get<double>(j, "s", "config.json"); }, "field \"s\" must be a number");
  expect([&] { json_get<int64_t>(j, "missing", "config.json"); }, "missing field \"missing\"");
  expect([&] { json_get<int64_t>(j, "z", "config.json"); }, "missing field \"z\"");
  expect([&] { json_get_or<bool>(j, "s", false, "config.json"); }, "field \"s\" must be a boolean");
  expect([&] { json_get<int64_t>(json::array(), "n", "config.json"); }, "missing field \"n\"");
}

}  // namespace
}  // namespace seek
