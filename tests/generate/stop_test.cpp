#include "generate/stop.h"

#include <gtest/gtest.h>

namespace seek::generate {
namespace {

// What a correct matcher emits in total: the text before the earliest stop occurrence.
std::string reference(const std::string& text, const std::vector<std::string>& stops,
                      bool* stopped) {
  size_t best = std::string::npos;
  for (const auto& s : stops)
    if (!s.empty()) best = std::min(best, text.find(s));
  *stopped = best != std::string::npos;
  return text.substr(0, best == std::string::npos ? text.size() : best);
}

// Feeds `text` split at the given cut points; checks that nothing after a stop is emitted.
std::string feed(StopMatcher& m, const std::string& text, const std::vector<size_t>& cuts) {
  std::string out;
  size_t prev = 0;
  for (size_t c : cuts) {
    out += m.push(text.substr(prev, c - prev));
    prev = c;
  }
  out += m.push(text.substr(prev));
  out += m.finish();
  return out;
}

TEST(StopMatcher, NoStopsPassesThrough) {
  StopMatcher m;
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.finish(), "");
  EXPECT_FALSE(m.stopped());
  StopMatcher e({""});
  EXPECT_EQ(e.push("abc"), "abc");
}

TEST(StopMatcher, SplitAcrossPieces) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("hel"), "hel");
  EXPECT_EQ(m.push("lo E"), "lo ");  // "E" may start "END"
  EXPECT_EQ(m.push("N"), "");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("D! more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "END");
  EXPECT_EQ(m.push("after"), "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcher, HeldTextIsReleasedWhenItDoesNotMatch) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("E"), "");
  EXPECT_EQ(m.push("N"), "");
  EXPECT_EQ(m.push("X"), "ENX");
  EXPECT_EQ(m.push("EN"), "");
  EXPECT_EQ(m.finish(), "EN");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, OverlappingPrefixes) {
  {
    StopMatcher m({"aab"});
    std::string out;
    for (char c : std::string("aaab")) out += m.push(std::string(1, c));
    EXPECT_EQ(out, "a");
    EXPECT_TRUE(m.stopped());
  }
  {
    StopMatcher m({"abcd", "bce"});
    EXPECT_EQ(m.push("abc"), "");  // "abc" may become abcd, "bc" may become bce
    EXPECT_EQ(m.push("e"), "a");
    EXPECT_EQ(m.matched(), "bce");
  }
  {
    StopMatcher m({"world", "lo"});  // the earliest occurrence wins, not the first listed
    EXPECT_EQ(m.push("hello world"), "hel");
    EXPECT_EQ(m.matched(), "lo");
  }
}

TEST(StopMatcher, StopAtStartAndMultibyte) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("STOP here"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher z({"。"});
  std::string text = "你好。再见";
  std::string out;
  for (char c : text) out += z.push(std::string(1, c));
  EXPECT_EQ(out, "你好");
}

TEST(StopMatcher, EverySplitMatchesTheReference) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"The answer is 42.\nUser: next", {"\nUser:", "User"}},
      {"xxababcabcd yy", {"abcd", "abce", "bab"}},
      {"no stop in here at all", {"zz", "here!"}},
      {"aaaaaaaaab", {"aaab"}},
      {"<｜end▁of▁sentence｜>tail", {"<｜end▁of▁sentence｜>"}},
  };
  for (const auto& [text, stops] : cases) {
    bool want_stop;
    const std::string want = reference(text, stops, &want_stop);
    for (size_t i = 0; i <= text.size(); ++i)
      for (size_t j = i; j <= text.size(); ++j) {
        StopMatcher m(stops);
        EXPECT_EQ(feed(m, text, {i, j}), want) << text << " cut " << i << "," << j;
        EXPECT_EQ(m.stopped(), want_stop);
      }
    StopMatcher m(stops);
    std::vector<size_t> every;
    for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
    EXPECT_EQ(feed(m, text, every), want) << text;
  }
}

}  // namespace
}  // namespace seek::generate
