// Fuzz harness: Tokenizer::from_json (tokenizer.hpp), a Hugging Face tokenizer.json.
// Properties: a rejected file throws attnscope::Error and nothing else; an accepted one encodes a
// few fixed texts (ASCII, multilingual with emoji and combining marks, whitespace runs, a long run
// of one letter that makes a careless regex backtrack, its own first tokens and the input's first
// bytes) to ids in [0, vocab_size()) or throws Error (never anything else); token_display and
// id_to_token of every returned id, and decode of the returned ids, throw nothing at all; encoding
// is deterministic. Hangs (a pre-tokenizer regex that backtracks without bound) are caught by
// libFuzzer's -timeout.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/tokenizer.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::only_error;
using attnscope::fuzz::require;

namespace {

// Runs f() where no exception at all is acceptable, attnscope::Error included.
template <class F>
void no_throw(const std::string& what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    finding(what + " threw " + fuzz::current_exception_type() + ": " + e.what());
  } catch (...) {
    finding(what + " threw a non-std exception (" + fuzz::current_exception_type() + ")");
  }
}

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF): only
// such a prefix of the input is worth encoding, since encode() refuses the rest up front.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

const std::vector<std::string>& fixed_texts() {
  static const std::vector<std::string> texts = {
      "Hello, world! It's 2024: the quick brown fox jumps over 13 lazy dogs.",
      // Accents precomposed and combining, CJK, Cyrillic, Arabic, Hangul, emoji with a skin tone
      // modifier and a zero-width-joiner family, a lone combining mark at the start of a word.
      "Gr\u00fc\u00dfe, \u4e16\u754c! \u041f\u0440\u0438\u0432\u0435\u0442 e\u0301 n\u0303 "
      "\u0645\u0631\u062d\u0628\u0627 \uc548\ub155 \U0001F642\U0001F44D\U0001F3FD "
      "\U0001F468\u200D\U0001F469\u200D\U0001F467 \u0301x",
      "  two  spaces\t\ttabs\n\n\nnewlines   \u00a0\u3000\u2028 end  \r\n",
      "",
      // A long run of one letter and a tail that fails: "(a+)+$"-style patterns backtrack here.
      std::string(600, 'a') + "!" + std::string(200, ' ') + "x",
  };
  return texts;
}

void check_ids(const Tokenizer& t, const std::vector<int32_t>& ids, const std::string& what) {
  const int64_t vocab = t.vocab_size();
  for (const int32_t id : ids) {
    require(id >= 0 && id < vocab, what + " returned id " + std::to_string(id) +
                                       " outside [0, vocab_size() = " + std::to_string(vocab) +
                                       ")");
    no_throw(what + ": token_display(" + std::to_string(id) + ")",
             [&] { (void)t.token_display(id); });
    no_throw(what + ": id_to_token(" + std::to_string(id) + ")", [&] { (void)t.id_to_token(id); });
  }
  no_throw(what + ": decode(ids, skip_special_tokens)", [&] { (void)t.decode(ids, true); });
  no_throw(what + ": decode(ids)", [&] { (void)t.decode(ids, false); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::optional<Tokenizer> loaded;
  if (!only_error("Tokenizer::from_json", [&] { loaded.emplace(Tokenizer::from_json(json)); })) {
    return 0;
  }
  const Tokenizer& t = *loaded;
  const int64_t vocab = t.vocab_size();
  require(vocab >= 0, "vocab_size() is negative: " + std::to_string(vocab));
  no_throw("kind()", [&] { (void)t.kind(); });
  // Out-of-range ids: token_display refuses them with Error, id_to_token says nullopt.
  for (const int64_t id : {int64_t{-1}, vocab}) {
    if (id > INT32_MAX) continue;
    const auto i = static_cast<int32_t>(id);
    require(!only_error("token_display(out of range)", [&] { (void)t.token_display(i); }),
            "token_display accepted id " + std::to_string(i) + " outside the vocabulary");
    no_throw("id_to_token(out of range)", [&] {
      require(!t.id_to_token(i).has_value(),
              "id_to_token gave a token for id " + std::to_string(i) + " outside the vocabulary");
    });
  }

  std::vector<std::string> texts = fixed_texts();
  // The first few tokens, separated: exercises added (special) tokens, which are split off whole.
  std::string own;
  for (int32_t id = 0; id < vocab && id < 8; ++id) {
    std::optional<std::string> s;
    no_throw("id_to_token", [&] { s = t.id_to_token(id); });
    if (s) own += *s + (id % 2 ? " x" : "");
  }
  texts.push_back(own);
  const std::string_view head = json.substr(0, 256);
  if (valid_utf8(head)) texts.emplace_back(head);

  for (size_t k = 0; k < texts.size(); ++k) {
    for (const bool special : {true, false}) {
      const std::string what =
          "encode(text " + std::to_string(k) + (special ? ", add_special_tokens)" : ")");
      std::vector<int32_t> ids;
      if (!only_error(what.c_str(), [&] { ids = t.encode(texts[k], special); })) continue;
      check_ids(t, ids, what);
      if (k == 0) {
        std::vector<int32_t> again;
        only_error(what.c_str(), [&] { again = t.encode(texts[k], special); });
        require(again == ids, what + " gave different ids on a second call");
      }
    }
  }
  return 0;
}
