// Errors as the DeepSeek API reports them: an HTTP status and
//   {"error": {"message": "...", "type": "...", "param": "max_tokens" | null, "code": "..." | null}}
// 400 malformed body, 401 bad API key, 404 unknown model or path, 413 body too large,
// 422 invalid parameter value (the message names the parameter), 429 queue full,
// 500 internal, 503 overloaded / shutting down / deadline passed.
#pragma once
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace seek::serve {

struct ApiError : std::runtime_error {
  int status;
  std::string type;
  std::string param;  // "" → null
  std::string code;   // "" → null
  ApiError(int status, std::string message, std::string type, std::string param = {},
           std::string code = {})
      : std::runtime_error(std::move(message)), status(status), type(std::move(type)),
        param(std::move(param)), code(std::move(code)) {}

  nlohmann::json body() const;
};

nlohmann::json error_body(int status, const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});
// The error type DeepSeek pairs with a status ("invalid_request_error", "authentication_error"…).
const char* error_type_for(int status);

// 422: a parameter has a wrong type or value; the message names it.
template <typename... Args>
[[noreturn]] void invalid_param(const std::string& param, fmt::format_string<Args...> f,
                                Args&&... args) {
  throw ApiError(422, fmt::format(f, std::forward<Args>(args)...), "invalid_request_error", param,
                 "invalid_parameter");
}

// 400: the body is not what the endpoint reads at all.
template <typename... Args>
[[noreturn]] void bad_request(fmt::format_string<Args...> f, Args&&... args) {
  throw ApiError(400, fmt::format(f, std::forward<Args>(args)...), "invalid_request_error", {},
                 "invalid_request");
}

}  // namespace seek::serve
