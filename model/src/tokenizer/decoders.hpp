// tokenizer.json "decoder": turns token strings back into text, as `tokenizers`' decode_chain
// does (each decoder rewrites the list of token strings; the result is their concatenation).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.hpp"

namespace attnscope::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
  virtual bool byte_level() const { return false; }
};

std::unique_ptr<Decoder> parse_decoder(const Json& j, const Origin& origin);

// `bytes` as UTF-8 with every maximal ill-formed subsequence replaced by U+FFFD (Rust's
// String::from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);

// The byte an "<0xNN>" byte-fallback token stands for, or -1.
int byte_token_value(std::string_view token);

}  // namespace attnscope::tok
