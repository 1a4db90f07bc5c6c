// UTF-8 and Unicode helpers the tokenizer needs beyond what PCRE2 and utf8proc give directly, and
// GPT-2's byte-to-printable-character alphabet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace attnscope::tok {

inline constexpr size_t kValidUtf8 = static_cast<size_t>(-1);

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points past U+10FFFF count as ill-formed), or kValidUtf8.
size_t invalid_utf8_offset(std::string_view s);

// The code point starting at s[i] (s is valid UTF-8); advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
// Byte length of the UTF-8 sequence whose first byte is `lead` (1 for stray bytes).
size_t utf8_length(unsigned char lead);

// Rust's char::is_whitespace (Unicode White_Space): what `tokenizers` strips around added tokens.
bool is_white_space(char32_t cp);
// Rust regex's `\w` (Alphabetic, marks, decimal digits, connector punctuation, joiners), which
// `tokenizers` uses to decide whether a single_word added token touches a word.
bool is_word_char(char32_t cp);

// GPT-2's byte-level alphabet: the printable bytes stand for themselves, the other 68 bytes for
// U+0100 upwards in byte order, so any byte string becomes printable, space-free text.
const std::array<std::string, 256>& byte_to_symbol();
// The inverse: byte value for a code point of that alphabet, or -1.
int symbol_to_byte(char32_t cp);

// `bytes` shown as text: complete, valid UTF-8 sequences as they are, every other byte as "<0xNN>".
std::string display_bytes(std::string_view bytes);

}  // namespace attnscope::tok
