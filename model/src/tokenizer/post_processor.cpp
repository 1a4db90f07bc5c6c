#include "tokenizer/post_processor.hpp"

namespace attnscope::tok {

namespace {
constexpr const char* kSupported = "TemplateProcessing, ByteLevel, Sequence";
}

PostProcessor PostProcessor::parse(const Json& j, const Origin& origin) {
  PostProcessor p;
  if (!j.is_null()) p.parse_into(j, origin);
  return p;
}

void PostProcessor::parse_into(const Json& j, const Origin& origin) {
  const std::string type = origin.type_of(j, "post_processor");
  const std::string where = "post_processor " + type;
  if (type == "ByteLevel") return;  // trims offsets only; ids are untouched
  if (type == "Sequence") {
    const Json& list = origin.member(j, "processors", where);
    if (!list.is_array()) origin.fail(where + " field 'processors' must be a list");
    for (const Json& item : list) parse_into(item, origin);
    return;
  }
  if (type != "TemplateProcessing")
    origin.fail("post_processor '" + type + "' is not supported; supported: " + kSupported);
  if (has_template_) origin.fail(where + " appears twice in one Sequence, which is not supported");
  has_template_ = true;
  const Json& single = origin.member(j, "single", where);
  if (!single.is_array()) origin.fail(where + " field 'single' must be a list of pieces");
  const Json& specials = origin.member(j, "special_tokens", where);
  if (!specials.is_object()) origin.fail(where + " field 'special_tokens' must be an object");
  bool saw_sequence = false;
  for (const Json& piece : single) {
    if (piece.is_object() && piece.contains("Sequence")) {
      const std::string id = origin.string_required(piece["Sequence"], "id", where + " Sequence");
      if (id != "A")
        origin.fail(where + " single template uses sequence '" + id + "'; only A is possible");
      steps_.push_back(kSequence);
      saw_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      const std::string id =
          origin.string_required(piece["SpecialToken"], "id", where + " SpecialToken");
      auto it = specials.find(id);
      if (it == specials.end())
        origin.fail(where + " template uses special token '" + id +
                    "', which its special_tokens map does not define");
      const Json& ids = origin.member(*it, "ids", where + " special token '" + id + "'");
      if (!ids.is_array()) origin.fail(where + " special token '" + id + "' ids must be a list");
      for (const Json& v : ids) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
          origin.fail(where + " special token '" + id + "' has id " + v.dump() +
                      ", expected a non-negative 32-bit integer");
        steps_.push_back(v.get<int64_t>());
      }
    } else {
      origin.fail(where + " single template piece " + piece.dump() +
                  " is neither {\"SpecialToken\": ...} nor {\"Sequence\": ...}");
    }
  }
  if (!saw_sequence) origin.fail(where + " single template never places the text ($A)");
}

int64_t PostProcessor::max_id() const {
  int64_t top = -1;
  for (int64_t step : steps_) top = std::max(top, step);  // kSequence is -1
  return top;
}

std::vector<int32_t> PostProcessor::apply(std::vector<int32_t> ids) const {
  if (!has_template_) return ids;
  std::vector<int32_t> out;
  out.reserve(ids.size() + steps_.size());
  for (const int64_t step : steps_) {
    if (step == kSequence)
      out.insert(out.end(), ids.begin(), ids.end());
    else
      out.push_back(static_cast<int32_t>(step));
  }
  return out;
}

}  // namespace attnscope::tok
