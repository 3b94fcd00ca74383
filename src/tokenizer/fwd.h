// The tokenizer's classes by name, for headers that only take them by reference (the full
// tokenizer.h / chat_template.h pull in PCRE2 and the Jinja engine).
#pragma once

namespace seek::tokenizer {
class ChatTemplate;
class Tokenizer;
}  // namespace seek::tokenizer
