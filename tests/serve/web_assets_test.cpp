// The chat page compiled into the binary is exactly web/: the build regenerates it, or by hand
//   cmake -DOUT=build/generated/web_assets.cpp -P src/serve/embed_web.cmake
#include "serve/web_assets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/io.h"

namespace seek::serve {
namespace {

const std::string kWebDir = std::string(SEEK_FIXTURES) + "/../../web";

TEST(WebAssets, MatchTheWebDirectory) {
  std::set<std::string> on_disk;
  for (const auto& e : std::filesystem::directory_iterator(kWebDir))
    if (e.is_regular_file()) on_disk.insert(e.path().filename().string());
  std::set<std::string> embedded;
  for (const WebAsset& a : web_assets()) {
    embedded.insert(std::string(a.path));
    EXPECT_EQ(std::string(a.body), read_file(kWebDir + "/" + std::string(a.path)))
        << "web/" << a.path << " changed: rebuild (the build embeds web/)";
  }
  EXPECT_EQ(embedded, on_disk) << "rebuild (the build embeds web/)";
}

TEST(WebAssets, PageReferencesOnlyEmbeddedFilesAndNoCdn) {
  const WebAsset* index = find_web_asset("index.html");
  ASSERT_NE(index, nullptr);
  for (const char* f : {"style.css", "markdown.js", "app.js"}) {
    EXPECT_NE(index->body.find(f), std::string_view::npos) << f;
    EXPECT_NE(find_web_asset(f), nullptr) << f;
  }
  for (const WebAsset& a : web_assets()) {
    EXPECT_EQ(a.body.find("http://"), std::string_view::npos) << a.path;
    EXPECT_EQ(a.body.find("https://"), std::string_view::npos) << a.path;
  }
  EXPECT_EQ(find_web_asset("../CMakeLists.txt"), nullptr);
}

}  // namespace
}  // namespace seek::serve
