#include "tokenizer/json_util.hpp"

namespace attnscope::tok {

const Json& Origin::member(const Json& obj, std::string_view key, std::string_view where) const {
  if (!obj.is_object()) fail(std::string(where) + " must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) fail(std::string(where) + " has no field '" + std::string(key) + "'");
  return *it;
}

std::string Origin::string_or(const Json& obj, std::string_view key, std::string_view where,
                              const std::string& fallback) const {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string())
    fail(std::string(where) + " field '" + std::string(key) + "' must be a string");
  return it->get<std::string>();
}

std::string Origin::string_required(const Json& obj, std::string_view key,
                                    std::string_view where) const {
  const Json& v = member(obj, key, where);
  if (!v.is_string())
    fail(std::string(where) + " field '" + std::string(key) + "' must be a string");
  return v.get<std::string>();
}

bool Origin::bool_or(const Json& obj, std::string_view key, std::string_view where,
                     bool fallback) const {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    fail(std::string(where) + " field '" + std::string(key) + "' must be true or false");
  return it->get<bool>();
}

int64_t Origin::int_or(const Json& obj, std::string_view key, std::string_view where,
                       int64_t fallback) const {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number_integer())
    fail(std::string(where) + " field '" + std::string(key) + "' must be an integer");
  return it->get<int64_t>();
}

std::string Origin::type_of(const Json& obj, std::string_view where) const {
  if (!obj.is_object()) fail(std::string(where) + " must be a JSON object or null");
  return string_required(obj, "type", where);
}

}  // namespace attnscope::tok
