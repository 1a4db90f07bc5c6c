#include "tokenizer/normalizers.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "tokenizer/regex.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

namespace {

constexpr const char* kSupported =
    "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence";

class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(int options) : options_(options) {}
  std::string normalize(std::string text) const override {
    if (text.empty()) return text;
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &out,
                                            static_cast<utf8proc_option_t>(options_));
    if (n < 0) throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
    std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
  }

 private:
  int options_;
};

// Per code point, like Rust's char::to_lowercase (no context-dependent final sigma).
class Lowercase final : public Normalizer {
 public:
  std::string normalize(std::string text) const override {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
      const char32_t cp = next_code_point(text, i);
      if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping
        append_utf8(out, U'i');
        append_utf8(out, 0x307);
      } else {
        append_utf8(out,
                    static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
      }
    }
    return out;
  }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string s) : prefix_(std::move(s)) {}
  // `tokenizers` leaves an empty string empty.
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    std::string out;
    size_t prev = 0;
    for (const Span& m : pattern_.find_all(text)) {
      out.append(text, prev, m.first - prev);
      out += content_;
      prev = m.second;
    }
    out.append(text, prev, std::string::npos);
    return out;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      size_t i = 0;
      while (i < text.size()) {
        const size_t at = i;
        if (!is_white_space(next_code_point(text, i))) {
          i = at;
          break;
        }
      }
      begin = i;
    }
    if (right_) {
      size_t content_end = begin;
      size_t i = begin;
      while (i < end) {
        if (!is_white_space(next_code_point(text, i))) content_end = i;
      }
      end = content_end;
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto& p : parts_) text = p->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

// {"String": "..."} or {"Regex": "..."}, as Split and Replace write their pattern.
Pattern parse_pattern(const Json& j, const Origin& origin, const std::string& where) {
  if (j.is_object() && j.size() == 1) {
    if (j.contains("String") && j["String"].is_string()) {
      std::string s = j["String"].get<std::string>();
      if (s.empty()) origin.fail(where + " pattern must not be an empty string");
      return Pattern::literal(std::move(s));
    }
    if (j.contains("Regex") && j["Regex"].is_string())
      return Pattern::regex(j["Regex"].get<std::string>(), origin.name + ": " + where);
  }
  origin.fail(where + " pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> parse_normalizer(const Json& j, const Origin& origin) {
  if (j.is_null()) return nullptr;
  const std::string type = origin.type_of(j, "normalizer");
  const std::string where = "normalizer " + type;
  if (type == "NFC") return std::make_unique<UnicodeForm>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeForm>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC")
    return std::make_unique<UnicodeForm>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD")
    return std::make_unique<UnicodeForm>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Prepend")
    return std::make_unique<Prepend>(origin.string_required(j, "prepend", where));
  if (type == "Replace") {
    Pattern p = parse_pattern(origin.member(j, "pattern", where), origin, where);
    return std::make_unique<Replace>(std::move(p), origin.string_required(j, "content", where));
  }
  if (type == "Strip")
    return std::make_unique<Strip>(origin.bool_or(j, "strip_left", where, true),
                                   origin.bool_or(j, "strip_right", where, true));
  if (type == "Sequence") {
    const Json& list = origin.member(j, "normalizers", where);
    if (!list.is_array()) origin.fail(where + " field 'normalizers' must be a list");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const Json& item : list) {
      if (item.is_null()) origin.fail(where + " lists a null normalizer");
      parts.push_back(parse_normalizer(item, origin));
    }
    return std::make_unique<Sequence>(std::move(parts));
  }
  origin.fail("normalizer '" + type + "' is not supported; supported: " + kSupported);
}

}  // namespace attnscope::tok
