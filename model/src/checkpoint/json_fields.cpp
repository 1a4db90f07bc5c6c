#include "checkpoint/json_fields.hpp"

#include <cmath>
#include <limits>

#include "attnscope/error.hpp"

namespace attnscope::checkpoint_detail {

using nlohmann::json;

std::string json_brief(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

const json* JsonFields::find(std::string_view key) const {
  const auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::has(std::string_view key) const {
  return find(key) != nullptr;
}

void JsonFields::fail(const std::string& sentence) const {
  throw Error(origin_ + ": " + sentence);
}

std::optional<int64_t> JsonFields::optional_positive_int(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  int64_t out = 0;
  bool ok = false;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    ok = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    out = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    out = v->get<int64_t>();
    ok = true;
  } else if (v->is_number_float()) {
    // Some writers emit 576.0; accept an exactly integral value.
    const double d = v->get<double>();
    ok = std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15;
    out = ok ? static_cast<int64_t>(d) : 0;
  }
  if (!ok || out <= 0) {
    fail("field '" + std::string(key) + "' must be a positive integer (got " + json_brief(*v) +
         ")");
  }
  return out;
}

int64_t JsonFields::positive_int(std::string_view key) const {
  if (!has(key)) fail("missing required field '" + std::string(key) + "'");
  return *optional_positive_int(key);
}

std::optional<double> JsonFields::optional_number(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number() || !std::isfinite(v->get<double>())) {
    fail("field '" + std::string(key) + "' must be a number (got " + json_brief(*v) + ")");
  }
  return v->get<double>();
}

std::optional<double> JsonFields::optional_positive_number(std::string_view key) const {
  const std::optional<double> d = optional_number(key);
  if (d && !(*d > 0)) {
    fail("field '" + std::string(key) + "' must be a positive number (got " +
         json_brief(*find(key)) + ")");
  }
  return d;
}

std::optional<bool> JsonFields::optional_bool(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    fail("field '" + std::string(key) + "' must be true or false (got " + json_brief(*v) + ")");
  }
  return v->get<bool>();
}

std::optional<std::string> JsonFields::optional_string(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail("field '" + std::string(key) + "' must be a string (got " + json_brief(*v) + ")");
  }
  return v->get<std::string>();
}

}  // namespace attnscope::checkpoint_detail
