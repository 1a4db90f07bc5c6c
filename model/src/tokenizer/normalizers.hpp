// tokenizer.json "normalizer": rewrites text before it is split into words (Unicode normal forms,
// lowercase, SentencePiece's "▁" for spaces). Only whole-string rewrites are needed here: ids do
// not depend on offsets.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/json_util.hpp"
#include "tokenizer/regex.hpp"

namespace attnscope::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// {"String": literal} or {"Regex": pattern}, as Split, Replace and their decoder write it.
Pattern parse_pattern(const Json& j, const Origin& origin, const std::string& where);

// The normalizer a tokenizer.json describes (nullptr for null); refuses unsupported types by name.
std::unique_ptr<Normalizer> parse_normalizer(const Json& j, const Origin& origin);

}  // namespace attnscope::tok
