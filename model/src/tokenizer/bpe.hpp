// tokenizer.json "model" of type BPE: a word becomes its characters' ids, then adjacent pairs are
// merged by rank (lowest first, leftmost on ties) until no listed merge applies, exactly as
// `tokenizers`' Word::merge_all does.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_util.hpp"

namespace attnscope::tok {

class Bpe {
 public:
  // Reads and checks the "model" object; refuses other model types and dropout by name.
  static Bpe parse(const Json& model, const Origin& origin);

  // Word results already computed during one encode call: text repeats words a lot.
  using Cache = std::unordered_map<std::string, std::vector<int32_t>>;
  // Appends the ids of one pre-tokenized word.
  void tokenize(const std::string& word, Cache& cache, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of `id`, or nullptr.
  const std::string* id_to_token(int32_t id) const;
  int64_t vocab_entries() const { return static_cast<int64_t>(vocab_.size()); }
  int64_t max_id() const { return static_cast<int64_t>(id_to_token_.size()) - 1; }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct MergeInfo {
    uint32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const MergeInfo* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  void merge_word(const std::string& word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::string unk_token_;  // "" when null
  std::optional<int32_t> unk_id_;
  std::string prefix_;  // continuing_subword_prefix ("" when null)
  std::string suffix_;  // end_of_word_suffix ("" when null)
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // "<0xNN>" ids, -1 where absent
};

}  // namespace attnscope::tok
