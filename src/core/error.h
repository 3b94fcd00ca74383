// Errors carry their context (file, tensor, field) up to the CLI or HTTP layer.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace seek {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace seek
