// From a validated request to prompt token ids: the chat template (tools described in the
// system prompt when the template does not render them itself), chat prefix completion, the
// reasoner's opening "<think>\n", and DeepSeek's fill-in-the-middle format.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "serve/requests.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::serve {

struct BuiltPrompt {
  std::string text;  // rendered (for debugging and tests)
  std::vector<int32_t> ids;
  bool reasoning = false;           // split <think> … </think> from the answer
  bool starts_in_thinking = false;  // the prompt ends inside an opened <think>
  std::string forced;               // text the answer must begin with (tool_choice)
};

class PromptBuilder {
 public:
  PromptBuilder(tokenizer::Tokenizer tok, std::optional<tokenizer::ChatTemplate> tmpl);

  // Throws ApiError 400 when the model has no chat template or the template fails.
  BuiltPrompt chat(const ChatRequest& r) const;
  // <｜fim▁begin｜>prompt<｜fim▁hole｜>suffix<｜fim▁end｜> with a suffix, else the plain prompt.
  BuiltPrompt completion(const CompletionRequest& r) const;

  const tokenizer::Tokenizer& tokenizer() const { return tok_; }

 private:
  tokenizer::Tokenizer tok_;
  std::optional<tokenizer::ChatTemplate> tmpl_;
  bool template_renders_tools_ = false;
};

}  // namespace seek::serve
