#include "tokenizer/pre_tokenizers.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <functional>

#include "tokenizer/normalizers.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

namespace {

constexpr const char* kSupported = "ByteLevel, Split, Metaspace, Digits, Sequence";

// GPT-2's word regex, which ByteLevel with use_regex applies.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

using Rewrite = std::function<void(Piece&)>;
using SplitOne = std::function<std::vector<Span>(const std::string&)>;

// Rewrites every text piece (`rewrite`, may be empty) and then splits it (`split_one`).
void split_pieces(std::vector<Piece>& pieces, const Rewrite& rewrite, const SplitOne& split_one) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) {
    if (p.token >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    if (rewrite) rewrite(p);
    for (const Span& s : split_one(p.text)) {
      Piece q;
      q.text = p.text.substr(s.first, s.second - s.first);
      q.at_origin = p.at_origin && s.first == 0;
      out.push_back(std::move(q));
    }
  }
  pieces = std::move(out);
}

std::vector<Span> whole(const std::string& text) {
  if (text.empty()) return {};
  return {Span{0, text.size()}};
}

// Split points where each character satisfying `pred` is its own match (`tokenizers`' Pattern
// for a char predicate).
std::vector<std::pair<Span, bool>> char_points(const std::string& text,
                                               const std::function<bool(char32_t)>& pred) {
  std::vector<std::pair<Span, bool>> out;
  size_t last = 0, i = 0;
  while (i < text.size()) {
    const size_t at = i;
    const char32_t cp = next_code_point(text, i);
    if (pred(cp)) {
      if (last < at) out.push_back({{last, at}, false});
      out.push_back({{at, i}, true});
      last = i;
    }
  }
  if (last < text.size()) out.push_back({{last, text.size()}, false});
  if (out.empty()) out.push_back({{0, 0}, false});
  return out;
}

std::vector<std::pair<Span, bool>> regex_points(const Regex& re, const std::string& text) {
  std::vector<std::pair<Span, bool>> out;
  size_t prev = 0;
  for (const Span& m : re.find_all(text)) {
    if (prev != m.first) out.push_back({{prev, m.first}, false});
    out.push_back({m, true});
    prev = m.second;
  }
  if (prev != text.size()) out.push_back({{prev, text.size()}, false});
  return out;
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_shared<const Regex>(kGpt2Pattern, "ByteLevel regex")
                         : nullptr) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Rewrite prefix;
    if (add_prefix_space_)
      prefix = [](Piece& p) {
        if (p.text.empty() || p.text.front() != ' ') p.text.insert(p.text.begin(), ' ');
      };
    if (regex_) {
      split_pieces(pieces, prefix, [&](const std::string& text) {
        return apply_behavior(regex_points(*regex_, text), Behavior::Isolated);
      });
    } else {
      split_pieces(pieces, prefix, whole);
    }
    const auto& symbols = byte_to_symbol();
    for (Piece& p : pieces) {
      if (p.token >= 0) continue;
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += symbols[b];
      p.text = std::move(mapped);
    }
  }
  bool byte_level() const override { return true; }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;
};

class Split final : public PreTokenizer {
 public:
  Split(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, nullptr, [&](const std::string& text) {
      auto points = pattern_.split_points(text);
      if (invert_)
        for (auto& pt : points) pt.second = !pt.second;
      return apply_behavior(std::move(points), behavior_);
    });
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    const Rewrite rewrite = [&](Piece& p) {
      std::string out;
      for (char c : p.text) {
        if (c == ' ')
          out += replacement_;
        else
          out += c;
      }
      const bool starts = out.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts &&
          (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_origin)))
        out.insert(0, replacement_);
      p.text = std::move(out);
    };
    const Pattern delimiter = Pattern::literal(replacement_);
    split_pieces(pieces, rewrite, [&](const std::string& text) {
      if (!split_) return whole(text);
      return apply_behavior(delimiter.split_points(text), Behavior::MergedWithNext);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    // Rust's char::is_numeric: the N categories.
    const auto numeric = [](char32_t cp) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL ||
             cat == UTF8PROC_CATEGORY_NO;
    };
    split_pieces(pieces, nullptr, [&](const std::string& text) {
      return apply_behavior(char_points(text, numeric),
                            individual_ ? Behavior::Isolated : Behavior::Contiguous);
    });
  }

 private:
  bool individual_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }
  bool byte_level() const override {
    for (const auto& p : parts_)
      if (p->byte_level()) return true;
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Behavior parse_behavior(const std::string& s, const Origin& origin, const std::string& where) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  origin.fail(where + " behavior '" + s +
              "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

}  // namespace

std::vector<Span> apply_behavior(std::vector<std::pair<Span, bool>> points, Behavior behavior) {
  std::vector<Span> out;
  out.reserve(points.size());
  switch (behavior) {
    case Behavior::Isolated:
      for (const auto& [span, is_match] : points) out.push_back(span);
      break;
    case Behavior::Removed:
      for (const auto& [span, is_match] : points)
        if (!is_match) out.push_back(span);
      break;
    case Behavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const auto& [span, is_match] : points) {
        if (is_match && !previous_match && !out.empty())
          out.back().second = span.second;
        else
          out.push_back(span);
        previous_match = is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = points.rbegin(); it != points.rend(); ++it) {
        if (it->second && !previous_match && !out.empty())
          out.back().first = it->first.first;
        else
          out.push_back(it->first);
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case Behavior::Contiguous: {
      bool previous_match = false;
      for (const auto& [span, is_match] : points) {
        if (is_match == previous_match && !out.empty())
          out.back().second = span.second;
        else
          out.push_back(span);
        previous_match = is_match;
      }
      break;
    }
  }
  std::erase_if(out, [](const Span& s) { return s.first == s.second; });
  return out;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& j, const Origin& origin) {
  if (j.is_null()) return nullptr;
  const std::string type = origin.type_of(j, "pre_tokenizer");
  const std::string where = "pre_tokenizer " + type;
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(origin.bool_or(j, "add_prefix_space", where, true),
                                       origin.bool_or(j, "use_regex", where, true));
  if (type == "Split") {
    Pattern p = parse_pattern(origin.member(j, "pattern", where), origin, where);
    const Behavior b = parse_behavior(origin.string_required(j, "behavior", where), origin, where);
    return std::make_unique<Split>(std::move(p), b, origin.bool_or(j, "invert", where, false));
  }
  if (type == "Metaspace") {
    std::string replacement = origin.string_or(j, "replacement", where, "\u2581");
    size_t i = 0;
    if (replacement.empty() || (next_code_point(replacement, i), i != replacement.size()))
      origin.fail(where + " replacement must be exactly one character");
    PrependScheme scheme = origin.bool_or(j, "add_prefix_space", where, true)
                               ? PrependScheme::Always
                               : PrependScheme::Never;
    const std::string s = origin.string_or(j, "prepend_scheme", where, "");
    if (s == "always") {
      scheme = PrependScheme::Always;
    } else if (s == "first") {
      scheme = PrependScheme::First;
    } else if (s == "never") {
      scheme = PrependScheme::Never;
    } else if (!s.empty()) {
      origin.fail(where + " prepend_scheme '" + s + "' is not one of always, first, never");
    }
    return std::make_unique<Metaspace>(std::move(replacement), scheme,
                                       origin.bool_or(j, "split", where, true));
  }
  if (type == "Digits")
    return std::make_unique<Digits>(origin.bool_or(j, "individual_digits", where, false));
  if (type == "Sequence") {
    const Json& list = origin.member(j, "pretokenizers", where);
    if (!list.is_array()) origin.fail(where + " field 'pretokenizers' must be a list");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const Json& item : list) {
      if (item.is_null()) origin.fail(where + " lists a null pre_tokenizer");
      parts.push_back(parse_pre_tokenizer(item, origin));
    }
    return std::make_unique<Sequence>(std::move(parts));
  }
  origin.fail("pre_tokenizer '" + type + "' is not supported; supported: " + kSupported);
}

}  // namespace attnscope::tok
