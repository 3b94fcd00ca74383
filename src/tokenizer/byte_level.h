// GPT-2's byte-level alphabet ("bytes_to_unicode"): every byte gets a printable stand-in
// character, so a BPE vocabulary over bytes can be stored as JSON strings.
//
// Printable bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand for themselves (as code points); the
// other 68 bytes map, in byte order, to U+0100 + n: space is 'Ġ' (U+0120), '\n' is 'Ċ', '\t' is 'ĉ'.
//
// Seek never builds byte-level strings while encoding: the vocabulary is translated to raw bytes
// once at load time, and BPE runs on the bytes of the text directly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace seek::tokenizer::byte_level {

// The stand-in character for `byte`.
char32_t byte_to_char(uint8_t byte);

// The byte a stand-in character represents, or nullopt if `c` is not in the alphabet.
std::optional<uint8_t> char_to_byte(char32_t c);

// Byte-level string (valid UTF-8) -> raw bytes. nullopt if any character is outside the alphabet.
std::optional<std::string> decode(std::string_view token);

// Raw bytes -> byte-level string.
std::string encode(std::string_view bytes);

}  // namespace seek::tokenizer::byte_level
