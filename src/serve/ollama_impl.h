// Private to the Ollama routes (ollama_api.cpp: chat and generate; ollama_info.cpp: tags, show,
// ps, version): what both halves share.
#pragma once
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "serve/server_impl.h"

namespace seek::serve {

// A served model by an Ollama name: as listed, or with the default tag (":latest") added.
const ModelSpec* find_ollama_model(const ModelRegistry& models, std::string_view name);
// The body's "model" (or the older "name"): 400 when missing, 404 `model "x" not found`.
const ModelSpec& ollama_model(const ModelRegistry& models, const nlohmann::json& body, std::string* name_out);
// The name Ollama lists a model under: with its tag.
std::string ollama_name(const ModelSpec& m);
// RFC 3339 UTC with nanoseconds, as Go's time.Time marshals ("2024-05-01T12:00:00.123456789Z").
std::string ollama_time(std::chrono::system_clock::time_point t);

// A route handler answering errors as Ollama does: {"error": "..."} with 400 for any invalid
// field (DeepSeek's 422 included) and 503 when the queue is full.
using OllamaHandler = std::function<void(const httplib::Request&, httplib::Response&)>;
OllamaHandler ollama_route(ServerState& s, std::string endpoint, OllamaHandler fn);

void add_ollama_info_routes(ServerState& s);

}  // namespace seek::serve
