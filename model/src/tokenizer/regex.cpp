#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.hpp"

#include <pcre2.h>
#include <chrono>
#include <cstdint>

#include "attnscope/error.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

namespace {

// Unicode White_Space, spelled out: what `\s` means to `tokenizers` (Oniguruma and Rust's regex
// agree). PCRE2's UCP `\s` differs by version: 10.42 adds U+180E, which Unicode dropped from
// White_Space in 6.3, and older releases miss U+0085 (NEL).
constexpr const char* kSpaceItems =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
// Rust regex's Unicode \w (Alphabetic approximated by letters and letter numbers, plus marks,
// decimal digits, connector punctuation and the joiners).
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}";

// Reads one escape starting at p[i] == '\\' and returns its full text; advances i past it.
std::string read_escape(std::string_view p, size_t& i, const std::string& where) {
  if (i + 1 >= p.size()) throw Error(where + ": regex ends with a lone backslash");
  size_t j = i + 2;
  const char c = p[i + 1];
  if ((c == 'p' || c == 'P' || c == 'x' || c == 'u') && j < p.size() && p[j] == '{') {
    const size_t close = p.find('}', j);
    if (close == std::string_view::npos)
      throw Error(where + ": regex has an unterminated \\" + std::string(1, c) + "{");
    j = close + 1;
  } else if (static_cast<unsigned char>(c) >= 0x80) {
    j = i + 1 + utf8_length(static_cast<unsigned char>(c));
  }
  if (c == 'h' || c == 'H' || c == 'R' || c == 'X' || c == 'K' || c == 'G')
    throw Error(where + ": regex escape \\" + std::string(1, c) +
                " means different things in Oniguruma and PCRE2 and is not supported");
  std::string out(p.substr(i, j - i));
  i = j;
  return out;
}

// Rewrites the character class starting at p[i] == '['; advances i past its ']'.
std::string translate_class(std::string_view p, size_t& i, const std::string& where) {
  size_t j = i + 1;
  bool negated = false;
  if (j < p.size() && p[j] == '^') {
    negated = true;
    ++j;
  }
  std::string items;                  // positive members, in PCRE2 class syntax
  std::vector<std::string> excluded;  // sets whose complement is a member (from \S, \W)
  bool first = true;
  while (true) {
    if (j >= p.size()) throw Error(where + ": regex has an unterminated character class");
    const char c = p[j];
    if (c == ']' && !first) break;
    first = false;
    if (c == '\\') {
      std::string esc = read_escape(p, j, where);
      if (esc == "\\s") {
        items += kSpaceItems;
      } else if (esc == "\\S") {
        excluded.push_back(kSpaceItems);
      } else if (esc == "\\w") {
        items += kWordItems;
      } else if (esc == "\\W") {
        excluded.push_back(kWordItems);
      } else {
        items += esc;
      }
      continue;
    }
    if (c == '[') {
      if (j + 1 < p.size() && p[j + 1] == ':') {
        const size_t close = p.find(":]", j + 2);
        if (close == std::string_view::npos)
          throw Error(where + ": regex has an unterminated POSIX class");
        items.append(p.substr(j, close + 2 - j));
        j = close + 2;
        continue;
      }
      throw Error(where + ": regex uses a nested character class, which PCRE2 does not support");
    }
    if (c == '&' && j + 1 < p.size() && p[j + 1] == '&')
      throw Error(where + ": regex uses class intersection (&&), which PCRE2 does not support");
    items += c;
    ++j;
  }
  i = j + 1;
  if (excluded.empty()) return std::string(negated ? "[^" : "[") + items + "]";
  if (!negated) {
    // items ∪ ¬E1 ∪ ¬E2 ...
    std::string out = "(?:";
    bool any = false;
    if (!items.empty()) {
      out += "[" + items + "]";
      any = true;
    }
    for (const auto& e : excluded) {
      out += std::string(any ? "|" : "") + "[^" + e + "]";
      any = true;
    }
    return out + ")";
  }
  // ¬(items ∪ ¬E1 ∪ ...) = ¬items ∩ E1 ∩ ...: one character checked against every part.
  std::string out = "(?:";
  if (!items.empty()) out += "(?![" + items + "])";
  for (size_t k = 1; k < excluded.size(); ++k) out += "(?=[" + excluded[k] + "])";
  return out + "[" + excluded[0] + "])";
}

}  // namespace

std::string translate_pattern(std::string_view p, const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      std::string esc = read_escape(p, i, where);
      if (esc == "\\s") {
        out += std::string("[") + kSpaceItems + "]";
      } else if (esc == "\\S") {
        out += std::string("[^") + kSpaceItems + "]";
      } else if (esc == "\\w") {
        out += std::string("[") + kWordItems + "]";
      } else if (esc == "\\W") {
        out += std::string("[^") + kWordItems + "]";
      } else {
        out += esc;
      }
    } else if (c == '[') {
      out += translate_class(p, i, where);
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, const std::string& where)
    : code_(std::make_unique<Code>()), where_(where) {
  const std::string translated = translate_pattern(pattern, where);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (code_->code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(where + ": regex '" + std::string(pattern) + "' does not compile (" +
                reinterpret_cast<const char*>(msg) + ")");
  }
  // JIT is only a speed-up; the interpreter gives the same matches when it is unavailable.
  (void)pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;

namespace {

// Per-thread scratch for matching: deep backtracking over long whitespace runs can outgrow
// PCRE2's default 32 KiB JIT stack.
constexpr uint32_t kMatchLimit = 1'000'000;

struct MatchScratch {
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchScratch() {
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr)
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    // One call of pcre2_match tries every start position itself, so on a text the pattern never
    // matches, a backtracking pattern spends the whole default limit (10M steps, seconds) inside
    // one call, out of reach of the scan's time budget. A tokenizer's regex needs a few dozen
    // steps per piece: a million per call refuses only runaway patterns, and fast.
    if (context != nullptr) pcre2_set_match_limit(context, kMatchLimit);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
  }
};

}  // namespace

std::vector<Span> Regex::find_all(std::string_view text) const {
  thread_local MatchScratch scratch;
  std::vector<Span> spans;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (md == nullptr) throw Error(where_ + ": out of memory matching a regex");
  size_t start = 0;
  size_t last_end = static_cast<size_t>(-1);
  // PCRE2's match limit (10M steps, Oniguruma's default too) bounds one call, but a pattern that
  // backtracks badly can spend most of it at every position of the text; a budget for the whole
  // scan keeps such a tokenizer.json from hanging the tokenizer. Well-formed patterns scan 100 KB
  // in tens of milliseconds, far inside it.
  const auto began = std::chrono::steady_clock::now();
  const double budget_s = 2.0 + 20e-3 * double(text.size()) / 1024.0;
  while (start <= text.size()) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count() >
        budget_s) {
      pcre2_match_data_free(md);
      throw Error(where_ + ": the regex takes over " + std::to_string(int(budget_s)) + " s on a " +
                  std::to_string(text.size()) +
                  "-byte text (it backtracks catastrophically); refusing rather than hanging");
    }
    const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, PCRE2_NO_UTF_CHECK, md, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT) {
      pcre2_match_data_free(md);
      throw Error(where_ + ": the regex needs over " + std::to_string(kMatchLimit) +
                  " steps at byte " + std::to_string(start) + " of a " +
                  std::to_string(text.size()) +
                  "-byte text (it backtracks catastrophically); refusing rather than hanging");
    }
    if (rc < 0) {
      pcre2_match_data_free(md);
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(where_ + ": regex matching failed (" + reinterpret_cast<const char*>(msg) + ")");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0], e = ov[1];
    if (s == e && e == last_end) {
      // An empty match touching the previous one: step one character and search again.
      if (start >= text.size()) break;
      start += utf8_length(static_cast<unsigned char>(text[start]));
      continue;
    }
    spans.emplace_back(s, e);
    last_end = e;
    if (s == e) {
      if (e >= text.size()) break;
      start = e + utf8_length(static_cast<unsigned char>(text[e]));
    } else {
      start = e;
    }
  }
  pcre2_match_data_free(md);
  return spans;
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::regex(std::string_view pattern, const std::string& where) {
  Pattern p;
  p.regex_ = std::make_shared<const Regex>(pattern, where);
  return p;
}

std::vector<Span> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<Span> spans;
  if (literal_.empty()) return spans;
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    spans.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return spans;
}

std::vector<std::pair<Span, bool>> Pattern::split_points(std::string_view text) const {
  std::vector<std::pair<Span, bool>> out;
  if (text.empty()) {
    out.push_back({{0, 0}, false});
    return out;
  }
  size_t prev = 0;
  for (const Span& m : find_all(text)) {
    if (prev != m.first) out.push_back({{prev, m.first}, false});
    out.push_back({m, true});
    prev = m.second;
  }
  if (prev != text.size()) out.push_back({{prev, text.size()}, false});
  return out;
}

}  // namespace attnscope::tok
