#include "serve/api_error.h"

namespace seek::serve {

const char* error_type_for(int status) {
  switch (status) {
    case 400: case 404: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::json error_body(int status, const std::string& message, const std::string& type,
                          const std::string& param, const std::string& code) {
  using nlohmann::json;
  return json{{"error",
               {{"message", message},
                {"type", type.empty() ? error_type_for(status) : type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

nlohmann::json ApiError::body() const { return error_body(status, what(), type, param, code); }

}  // namespace seek::serve
