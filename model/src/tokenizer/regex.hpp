// The regular expressions of a tokenizer.json, run on PCRE2 (UTF + UCP, JIT when available).
// `tokenizers` writes them for Rust-style Unicode engines; the few places where PCRE2 reads the
// same text differently are rewritten here (see translate_pattern), never approximated.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attnscope::tok {

// [start, end) byte offsets of one match.
using Span = std::pair<size_t, size_t>;

// The pattern as PCRE2 must see it to match exactly what `tokenizers` matches: `\s` there is
// exactly Unicode White_Space (with U+0085 NEL, without U+180E), which PCRE2's UCP `\s` is not in
// every version, so `\s`/`\S` (and `\w`/`\W`, to Unicode's word set) are spelled out. Throws Error
// (prefixed by `where`) for constructs PCRE2 would read differently and we do not rewrite.
std::string translate_pattern(std::string_view pattern, const std::string& where);

class Regex {
 public:
  // `pattern` in `tokenizers`' dialect; `where` names it in errors ("pre_tokenizer Split").
  Regex(std::string_view pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping match left to right; an empty match right after the previous match is
  // skipped, as Rust's and Oniguruma's find_iter do. `text` must be valid UTF-8.
  std::vector<Span> find_all(std::string_view text) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
  std::string where_;
};

// A Split/Replace pattern: {"String": literal} or {"Regex": pattern}.
class Pattern {
 public:
  static Pattern literal(std::string s);
  static Pattern regex(std::string_view pattern, const std::string& where);
  std::vector<Span> find_all(std::string_view text) const;
  // [(span, is_match)] covering all of `text` in order, as `tokenizers`' find_matches gives it.
  std::vector<std::pair<Span, bool>> split_points(std::string_view text) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace attnscope::tok
