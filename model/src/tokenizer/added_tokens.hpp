// tokenizer.json "added_tokens": strings (mostly special tokens like "<s>") that are cut out of the
// text whole before anything else runs, so they are never normalized or split by BPE.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_util.hpp"
#include "tokenizer/normalizers.hpp"
#include "tokenizer/pre_tokenizers.hpp"

namespace attnscope::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;       // also swallow the whitespace before it
  bool rstrip = false;       // also swallow the whitespace after it
  bool single_word = false;  // only where it does not touch a word character
  bool normalized = false;   // matched on the normalized text instead of the raw text
  // What decode() feeds the decoder for it: the content, normalized when `normalized` (what
  // `tokenizers` stores and decodes, e.g. "▁ſ" under a Prepend("▁") normalizer).
  std::string decode_text;
};

class AddedTokens {
 public:
  // `normalizer` (may be null) turns the contents of normalized tokens into what they match.
  // Ids are assigned as `tokenizers` assigns them: content already in the model's vocabulary
  // takes that id; other tokens take, in listed order, the next id past the larger of
  // `model_size` (the number of vocabulary entries) and every id given out before.
  static AddedTokens parse(
      const Json& list, const Origin& origin, const Normalizer* normalizer,
      const std::function<std::optional<int32_t>(const std::string&)>& model_id,
      int64_t model_size);

  // Cuts the raw-text tokens out of `text` (the first step of encoding).
  std::vector<Piece> split_raw(const std::string& text) const;
  // Cuts the normalized-text tokens out of one normalized piece.
  std::vector<Piece> split_normalized(Piece piece) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_id(int32_t id) const;
  const AddedToken* find_content(const std::string& content) const;

 private:
  // Leftmost-longest matching over a set of strings (what `tokenizers` builds with Aho-Corasick).
  struct Matcher {
    std::vector<std::string> patterns;
    std::vector<size_t> token_index;  // patterns[k] is tokens_[token_index[k]]
    // Pattern indices by first byte, longest first.
    std::vector<std::vector<size_t>> by_first_byte = std::vector<std::vector<size_t>>(256);
    void add(std::string pattern, size_t token);
    void finish();
    bool empty() const { return patterns.empty(); }
  };
  std::vector<Piece> split_with(const std::string& text, bool at_origin, const Matcher& m) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Matcher raw_, normalized_;
};

}  // namespace attnscope::tok
