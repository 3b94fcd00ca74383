#include "serve/tool_calls.h"

#include <fmt/format.h>

namespace seek::serve {

using nlohmann::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ```json\n{...}\n```  →  {...}
std::string_view strip_fence(std::string_view s) {
  s = trim(s);
  if (s.substr(0, 3) == "```") {
    const size_t nl = s.find('\n');
    s = nl == std::string_view::npos ? std::string_view{} : s.substr(nl + 1);
    const size_t end = s.rfind("```");
    if (end != std::string_view::npos) s = s.substr(0, end);
  }
  return trim(s);
}

// Arguments as compact JSON when they parse, else verbatim (the client sees what the model wrote).
std::string normalize_args(std::string_view a) {
  if (a.empty()) return "{}";
  json j = json::parse(a, nullptr, false);
  if (j.is_discarded()) return std::string(a);
  return j.dump();
}

}  // namespace

ParsedToolCalls parse_tool_calls(std::string_view text, const std::string& id_seed) {
  ParsedToolCalls out;
  const size_t begin = text.find(kToolCallsBegin);
  if (begin == std::string_view::npos) {
    out.content = std::string(text);
    return out;
  }
  out.content = std::string(trim(text.substr(0, begin)));
  std::string_view rest = text.substr(begin + kToolCallsBegin.size());
  if (const size_t end = rest.find(kToolCallsEnd); end != std::string_view::npos)
    rest = rest.substr(0, end);
  for (;;) {
    const size_t b = rest.find(kToolCallBegin);
    if (b == std::string_view::npos) break;
    rest = rest.substr(b + kToolCallBegin.size());
    size_t e = rest.find(kToolCallEnd);
    std::string_view call = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + kToolCallEnd.size());
    const size_t sep = call.find(kToolSep);
    if (sep == std::string_view::npos) continue;
    std::string_view head = trim(call.substr(0, sep)), body = call.substr(sep + kToolSep.size());
    ToolCall c;
    if (head == "function" || head.empty()) {  // V3: type<sep>name\n```json\nargs\n```
      body = trim(body);
      const size_t nl = body.find('\n');
      c.name = std::string(trim(body.substr(0, nl)));
      c.arguments = normalize_args(nl == std::string_view::npos ? "" : strip_fence(body.substr(nl + 1)));
    } else {  // V3.1: name<sep>args
      c.name = std::string(head);
      c.arguments = normalize_args(strip_fence(body));
    }
    if (c.name.empty()) continue;
    c.id = fmt::format("call_{}_{}", id_seed, out.calls.size());
    out.calls.push_back(std::move(c));
  }
  return out;
}

std::string tools_system_prompt(const std::vector<ToolSpec>& tools) {
  std::string s = "## Tools\nYou have access to the following tools:\n";
  for (const ToolSpec& t : tools) {
    s += "\n### " + t.name + "\nDescription: " + t.description + "\n\nParameters: " +
         (t.parameters.is_null() ? std::string("{}") : t.parameters.dump()) + "\n";
  }
  s += "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n";
  s += std::string(kToolCallsBegin) + std::string(kToolCallBegin) + "function" +
       std::string(kToolSep) + "tool_call_name\n```json\ntool_call_arguments\n```" +
       std::string(kToolCallEnd) + "{{additional_tool_calls}}" + std::string(kToolCallsEnd) +
       "\n\nWhere:\n"
       "- `tool_call_name` must be an exact match to one of the available tools\n"
       "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters "
       "Schema\n"
       "- For multiple tool calls, chain them directly without separators or spaces\n";
  return s;
}

std::string forced_tool_call_prefix(const ChatRequest& r) {
  if (r.tools.empty()) return {};
  if (r.tool_choice == "required") return std::string(kToolCallsBegin);
  if (r.tool_choice == "function")
    return std::string(kToolCallsBegin) + std::string(kToolCallBegin) + "function" +
           std::string(kToolSep) + r.tool_choice_name + "\n```json\n";
  return {};
}

json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  json a = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", calls[i].id},
              {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (with_index) c["index"] = i;
    a.push_back(std::move(c));
  }
  return a;
}

std::string ToolCallFilter::push(std::string_view text) {
  if (in_calls_) return {};
  held_ += text;
  if (const size_t b = held_.find(kToolCallsBegin); b != std::string::npos) {
    in_calls_ = true;
    std::string out = held_.substr(0, b);
    held_.clear();
    return out;
  }
  // Keep the longest tail that is a proper prefix of the marker.
  size_t keep = std::min(held_.size(), kToolCallsBegin.size() - 1);
  while (keep > 0 && kToolCallsBegin.substr(0, keep) != std::string_view(held_).substr(held_.size() - keep))
    --keep;
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string ToolCallFilter::finish() {
  if (in_calls_) return {};
  return std::exchange(held_, {});
}

}  // namespace seek::serve
