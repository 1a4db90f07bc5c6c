// tokenizer.json "pre_tokenizer": cuts normalized text into the words BPE sees (and, for the
// byte-level kind, rewrites each word's bytes into GPT-2's printable alphabet).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.hpp"
#include "tokenizer/regex.hpp"

namespace attnscope::tok {

// One piece of the text on its way to ids: either an added token already matched (token >= 0)
// or text still to be pre-tokenized and run through BPE.
struct Piece {
  std::string text;
  int32_t token = -1;
  // Whether this piece starts at byte 0 of the original text (Metaspace's prepend_scheme "first").
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every text piece by the pieces it splits into; matched added tokens pass through.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
  // True when this pre-tokenizer (or one it contains) maps bytes to GPT-2's alphabet.
  virtual bool byte_level() const { return false; }
};

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The spans that survive splitting at `points` (as Pattern::split_points gives them) under
// `behavior`, empty spans dropped: `tokenizers`' NormalizedString::split.
std::vector<Span> apply_behavior(std::vector<std::pair<Span, bool>> points, Behavior behavior);

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& j, const Origin& origin);

}  // namespace attnscope::tok
