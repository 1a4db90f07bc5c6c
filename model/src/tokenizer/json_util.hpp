// Helpers shared by the tokenizer.json parsers: every refusal and every malformed field becomes one
// attnscope::Error sentence that starts with the file it came from.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "attnscope/error.hpp"

namespace attnscope::tok {

using Json = nlohmann::json;

// Where a tokenizer.json came from; prefixes every error so the user knows which file to fix.
struct Origin {
  std::string name;

  [[noreturn]] void fail(const std::string& what) const { throw Error(name + ": " + what); }

  // The object member `key` of `obj` (`where` names obj in errors), required to exist.
  const Json& member(const Json& obj, std::string_view key, std::string_view where) const;
  // The string member `key`; `fallback` when absent or null.
  std::string string_or(const Json& obj, std::string_view key, std::string_view where,
                        const std::string& fallback) const;
  std::string string_required(const Json& obj, std::string_view key, std::string_view where) const;
  bool bool_or(const Json& obj, std::string_view key, std::string_view where, bool fallback) const;
  int64_t int_or(const Json& obj, std::string_view key, std::string_view where,
                 int64_t fallback) const;
  // The "type" of a component object (normalizer, pre_tokenizer, ...).
  std::string type_of(const Json& obj, std::string_view where) const;
};

}  // namespace attnscope::tok
