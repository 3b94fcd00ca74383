// Function calling in DeepSeek-V3's own format. The tools are described in the system prompt
// (when the chat template does not render them itself) and the model answers with special
// tokens (not "special": they survive decoding as text):
//
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
//   ```json
//   {"city": "Paris"}
//   ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>
//
// (V3.1 writes `name<｜tool▁sep｜>{args}` without the type and fence; both are read.)
// Text before the calls is the message content; the calls become OpenAI `tool_calls`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "serve/requests.h"

namespace seek::serve {

inline constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kToolSep = "<｜tool▁sep｜>";

struct ToolCall {
  std::string id;  // "call_..." (generated)
  std::string name;
  std::string arguments;  // JSON text, as OpenAI returns it
};

struct ParsedToolCalls {
  std::string content;          // text before the first call
  std::vector<ToolCall> calls;  // empty: an ordinary answer
};

// Splits a finished answer. `id_seed` makes the generated call ids unique per response.
ParsedToolCalls parse_tool_calls(std::string_view text, const std::string& id_seed);

// The system-prompt section that teaches the model the tools and the call format.
std::string tools_system_prompt(const std::vector<ToolSpec>& tools);

// The forced beginning of an answer for tool_choice "required" / a named function.
std::string forced_tool_call_prefix(const ChatRequest& r);

nlohmann::json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index);

// Streaming: passes answer text through until the tool-call block begins, holding back a tail
// that may still turn into its opening marker; from then on keeps everything for the parse at
// the end.
class ToolCallFilter {
 public:
  std::string push(std::string_view text);  // content that can be streamed now
  std::string finish();                     // held text when no call block began
  bool in_calls() const { return in_calls_; }

 private:
  std::string held_;
  bool in_calls_ = false;
};

}  // namespace seek::serve
