// The web chat (web/*.html, *.js, *.css) compiled into the binary, so `seek serve` needs no
// files beside it and fetches nothing from a CDN. The build generates web_assets.cpp from web/
// whenever a file there changes; by hand:
//   cmake -DOUT=build/generated/web_assets.cpp -P src/serve/embed_web.cmake
// and a test fails when the two differ.
#pragma once
#include <span>
#include <string_view>

namespace seek::serve {

struct WebAsset {
  std::string_view path;  // relative to web/, e.g. "app.js"
  std::string_view mime;
  std::string_view body;
};

std::span<const WebAsset> web_assets();
const WebAsset* find_web_asset(std::string_view path);

}  // namespace seek::serve
