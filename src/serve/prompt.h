// From a validated request to prompt token ids: the chat template (tools described in the
// system prompt when the template does not render them itself), chat prefix completion, the
// reasoner's opening "<think>\n", and DeepSeek's fill-in-the-middle format.
#pragma once
#include <cstddef>
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
  // `literal_content`: message contents are plain text, so "<｜Assistant｜>" typed by a user is
  // not the template's marker (only the template's own text holds control tokens).
  PromptBuilder(tokenizer::Tokenizer tok, std::optional<tokenizer::ChatTemplate> tmpl,
                bool literal_content = true);

  // Both throw ApiError 400 when the prompt holds `max_tokens` or more tokens (it leaves no
  // room to answer); encoding stops soon after the limit, so a huge prompt costs little.
  // chat() also throws 400 when the model has no chat template or the template fails.
  BuiltPrompt chat(const ChatRequest& r, size_t max_tokens = SIZE_MAX) const;
  // <｜fim▁begin｜>prompt<｜fim▁hole｜>suffix<｜fim▁end｜> with a suffix, else the plain prompt.
  BuiltPrompt completion(const CompletionRequest& r, size_t max_tokens = SIZE_MAX) const;

  const tokenizer::Tokenizer& tokenizer() const { return tok_; }
  const std::optional<tokenizer::ChatTemplate>& chat_template() const { return tmpl_; }

 private:
  tokenizer::Tokenizer tok_;
  std::optional<tokenizer::ChatTemplate> tmpl_;
  // Encodes p.text into p.ids; 400 for invalid UTF-8 or a prompt of max_tokens or more.
  void encode(BuiltPrompt& p, const tokenizer::EncodeOptions& eo, const char* param) const;

  bool template_renders_tools_ = false;
  bool literal_content_ = true;
};

}  // namespace seek::serve
