// Typed reads of config.json fields with errors that name the file and the field: config files
// come from users and other tools, so a missing, null or mistyped field must say which one it is.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace attnscope::checkpoint_detail {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string origin)
      : object_(object), origin_(std::move(origin)) {}

  // A present, non-null field (transformers treats null as "use the default").
  bool has(std::string_view key) const;
  // The key is there, even with a null value.
  bool present(std::string_view key) const { return object_.contains(key); }
  // The field when present and non-null.
  const nlohmann::json* find(std::string_view key) const;

  // Required positive integer ("missing required field 'hidden_size'").
  int64_t positive_int(std::string_view key) const;
  // Optional positive integer; nullopt when absent or null.
  std::optional<int64_t> optional_positive_int(std::string_view key) const;
  // Optional positive number (floats and integers alike).
  std::optional<double> optional_positive_number(std::string_view key) const;
  // Optional number of any sign.
  std::optional<double> optional_number(std::string_view key) const;
  std::optional<bool> optional_bool(std::string_view key) const;
  std::optional<std::string> optional_string(std::string_view key) const;

  // "DIR/config.json: <sentence>"
  [[noreturn]] void fail(const std::string& sentence) const;
  const std::string& origin() const { return origin_; }

 private:
  const nlohmann::json& object_;
  std::string origin_;
};

// A short rendering of a JSON value for messages (at most ~40 characters).
std::string json_brief(const nlohmann::json& value);

}  // namespace attnscope::checkpoint_detail
