// tokenizer.json "post_processor": what encode(text, add_special_tokens=true) wraps around the
// ids (Llama's BOS). Only single-sequence templates matter here: attnscope encodes one text.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/json_util.hpp"

namespace attnscope::tok {

class PostProcessor {
 public:
  // nullptr-safe: an absent post_processor adds nothing.
  static PostProcessor parse(const Json& j, const Origin& origin);
  std::vector<int32_t> apply(std::vector<int32_t> ids) const;
  // The largest id the template emits; -1 when it emits none.
  int64_t max_id() const;

 private:
  // The single template flattened: ids to emit, with kSequence marking where the text goes.
  static constexpr int64_t kSequence = -1;
  std::vector<int64_t> steps_;
  bool has_template_ = false;
  void parse_into(const Json& j, const Origin& origin);
};

}  // namespace attnscope::tok
