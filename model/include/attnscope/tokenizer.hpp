// A Hugging Face tokenizer.json, applied exactly as the `tokenizers` library applies it: added
// (special) tokens split off whole first, then normalizer, pre-tokenizer, BPE model,
// post-processor. Two BPE kinds are supported: byte-level (GPT-2, Llama 3, Qwen, SmolLM;
// pre-tokenizer regexes run on PCRE2 in UTF + UCP mode) and SentencePiece-style with byte fallback
// (Llama 2, TinyLlama, Mistral v0.1). Anything else the JSON asks for is refused by name, never
// approximated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope {

class Tokenizer {
 public:
  // Reads and checks a tokenizer.json. Throws Error naming the file and what is wrong or
  // unsupported ("pre_tokenizer 'Whitespace' is not supported; supported: ByteLevel, ...").
  static Tokenizer from_file(const std::string& path);
  // The same from the JSON text; `origin` names it in errors.
  static Tokenizer from_json(std::string_view json, const std::string& origin = "tokenizer.json");

  // Token ids as `tokenizers`' Tokenizer.encode(text, add_special_tokens) gives them: with
  // add_special_tokens the post-processor's template (Llama's BOS) is applied. Throws Error when
  // `text` is not valid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // The text of `ids` as the tokenizer.json's decoder gives it (`tokenizers`' decode with
  // skip_special_tokens), so decode(encode(x, false), true) == x for the byte-level kinds.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const;

  // One token as shown on a map axis: its bytes (byte-level alphabet reversed, SentencePiece's
  // "▁" as a space, "<0xNN>" byte tokens as that byte) read as UTF-8, where every byte that is not
  // part of a complete, valid UTF-8 sequence shows as "<0xNN>" (never mojibake). Special tokens
  // show as their content ("<s>"). Throws Error for an id outside [0, vocab_size()).
  std::string token_display(int32_t id) const;

  // The raw vocabulary string of `id` ("Ġthe", "▁the", "<0x0A>"), nullopt outside the vocabulary.
  std::optional<std::string> id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;

  // One past the largest id the tokenizer can produce (model vocabulary and added tokens).
  int64_t vocab_size() const;
  // "byte-level BPE" or "SentencePiece BPE (byte fallback)": for info lines.
  std::string kind() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace attnscope
