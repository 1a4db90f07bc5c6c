// What the tokenizer refuses (by name, never approximated), invalid UTF-8, token_display, and the
// byte-level round trip decode(encode(x)) == x on random Unicode.
#include <gtest/gtest.h>

#include <random>

#include "attnscope/error.hpp"
#include "tokenizer_fixtures.hpp"

namespace attnscope::testing {
namespace {

// The Error message from loading `j`, or "" when it loads.
std::string load_error(const Json& j) {
  try {
    make(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_refused(const Json& j, const std::string& needle) {
  const std::string msg = load_error(j);
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: '" << msg << "'";
  EXPECT_NE(msg.find("test.json"), std::string::npos) << "message: '" << msg << "'";
}

TEST(TokenizerErrors, RefusesOtherModelsByName) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    Json j = byte_level_json({});
    j["model"]["type"] = type;
    expect_refused(j, std::string("model type '") + type + "' is not supported");
  }
}

TEST(TokenizerErrors, RefusesUnsupportedComponentsByName) {
  Json j = byte_level_json({});
  j["normalizer"] = {{"type", "BertNormalizer"}};
  expect_refused(j, "normalizer 'BertNormalizer' is not supported; supported: NFC");
  j = byte_level_json({});
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_refused(j, "pre_tokenizer 'Whitespace' is not supported; supported: ByteLevel");
  j = byte_level_json({});
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", Json::array({Json{{"type", "BertPreTokenizer"}}})}};
  expect_refused(j, "pre_tokenizer 'BertPreTokenizer' is not supported");
  j = byte_level_json({});
  j["decoder"] = {{"type", "WordPiece"}};
  expect_refused(j, "decoder 'WordPiece' is not supported");
  j = byte_level_json({});
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_refused(j, "post_processor 'RobertaProcessing' is not supported");
  j = byte_level_json({});
  j["model"]["dropout"] = 0.1;
  expect_refused(j, "dropout");
  j = byte_level_json({});
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "[a-z&&[^x]]"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  expect_refused(j, "intersection");
}

TEST(TokenizerErrors, RefusesBrokenFiles) {
  Json j = byte_level_json({});
  j["model"]["merges"] = Json::array({Json::array({"a", "\xE2\x80\x94"})});
  expect_refused(j, "merge #0");
  j = byte_level_json({});
  j.erase("model");
  expect_refused(j, "model");
  EXPECT_NE(load_error(Json::array()).find("not a JSON object"), std::string::npos);
  try {
    Tokenizer::from_json("{ not json", "broken.json");
    ADD_FAILURE() << "invalid JSON loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json"), std::string::npos);
  }
  EXPECT_THROW(Tokenizer::from_file(ATTNSCOPE_TEST_TMP "/no/such/tokenizer.json"), Error);
}

TEST(TokenizerErrors, InvalidUtf8NamesTheByte) {
  const Tokenizer t = make(byte_level_json({}));
  const std::pair<std::string, std::string> cases[] = {
      {"ab\xFF"
       "cd",
       "byte 2"},                       // never valid
      {"\xC0\x80", "byte 0"},           // overlong NUL
      {"a\xED\xA0\x80", "byte 1"},      // UTF-16 surrogate
      {"abc\xE2\x82", "byte 3"},        // truncated sequence
      {"\xF4\x90\x80\x80", "byte 0"}};  // past U+10FFFF
  for (const auto& [text, needle] : cases) {
    try {
      t.encode(text);
      ADD_FAILURE() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(TokenizerErrors, ByteLevelTokenDisplay) {
  // E2 82 AC is "€": 256 = E2+82 (an incomplete sequence), 257 = the whole character.
  const Tokenizer t = make(byte_level_json({{"\xE2", "\x82"}, {"\xE2\x82", "\xAC"}}));
  EXPECT_EQ(t.token_display(' '), " ");
  EXPECT_EQ(t.token_display('\n'), "\n");
  EXPECT_EQ(t.token_display(0xE2), "<0xE2>");
  EXPECT_EQ(t.token_display(256), "<0xE2><0x82>");
  EXPECT_EQ(t.token_display(257), "\u20AC");
  EXPECT_EQ(t.id_to_token(' '), "\u0120");  // Ġ
  EXPECT_THROW(t.token_display(258), Error);
  EXPECT_THROW(t.token_display(-1), Error);
  EXPECT_EQ(t.kind(), "byte-level BPE");
  EXPECT_EQ(t.encode("\u20AC", false), Ids{257});
}

// A random valid UTF-8 string: ASCII, whitespace (NEL included), Latin, combining marks, CJK,
// emoji with joiners, anything up to U+10FFFF except surrogates.
std::string random_text(std::mt19937& rng) {
  static const char32_t picks[] = {U' ',  U'\n',   U'\t',   0x85,   0xA0,  0x3000,
                                   0x301, 0x308,   0x200D,  0xFE0F, U'\'', U's',
                                   U'0',  0x1F600, 0x1F3FD, 0xE9,   0x4E2D};
  std::uniform_int_distribution<int> len(0, 40), kind(0, 5);
  std::string out;
  const int n = len(rng);
  for (int k = 0; k < n; ++k) {
    char32_t cp;
    switch (kind(rng)) {
      case 0:
      case 1:
        cp = std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng);
        break;
      case 2:
        cp = picks[std::uniform_int_distribution<size_t>(0, std::size(picks) - 1)(rng)];
        break;
      case 3:
        cp = std::uniform_int_distribution<char32_t>(0x80, 0x2FFF)(rng);
        break;
      default:
        do {
          cp = std::uniform_int_distribution<char32_t>(0, 0x10FFFF)(rng);
        } while (cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

TEST(TokenizerErrors, ByteLevelRoundTripsRandomUnicode) {
  const Tokenizer t = make(byte_level_json({{" ", "t"},
                                            {"h", "e"},
                                            {" t", "he"},
                                            {"\xF0", "\x9F"},
                                            {"\xE2", "\x80"},
                                            {"\xCC", "\x81"},
                                            {" ", " "}}));
  std::mt19937 rng(1234);
  for (int k = 0; k < 2000; ++k) {
    const std::string text = random_text(rng);
    const Ids ids = t.encode(text, false);
    ASSERT_EQ(t.decode(ids), text) << "case " << k;
    for (const int32_t id : ids) ASSERT_FALSE(t.token_display(id).empty());
  }
}

}  // namespace
}  // namespace attnscope::testing

namespace attnscope::testing {
namespace {

// Hostile files the fuzzer found (tests/fuzz/corpus/tokenizer_json keeps them too): each is
// refused with its reason instead of costing gigabytes, emitting ids past the vocabulary, or
// backtracking for minutes.
TEST(TokenizerErrors, RefusesHostileFiles) {
  Json j = Json::parse(R"({"model":{"type":"BPE","vocab":{"a":200000000},"merges":[]}})");
  expect_refused(j, "vocab ids run up to 200000000 for 1 entries");
  j = Json::parse(R"({"post_processor":{"type":"TemplateProcessing",
    "single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}],
    "special_tokens":{"<s>":{"ids":[99]}}},
    "model":{"type":"BPE","vocab":{"a":0," ":1,"!":2,"x":3},"merges":[]}})");
  expect_refused(j, "post_processor adds token id 99, outside the vocabulary (ids 0 to 3)");

  j = Json::parse(R"({"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(?:(a|aa){1,22}c)?a"},
    "behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":0,"!":1," ":2,"x":3},"merges":[]}})");
  const Tokenizer t = make(j);
  try {
    (void)t.encode(std::string(800, 'a'), false);
    ADD_FAILURE() << "a catastrophically backtracking regex ran to the end";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backtracks catastrophically"), std::string::npos)
        << e.what();
  }
  // The same pattern where it can never match ("#" is not in the text): every start position is
  // tried inside one pcre2_match call, so only its step limit stops it (found by the fuzzer,
  // taking 39 s).
  j = Json::parse(R"({"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(?:(a|aa){1,22}c)?#a"},
    "behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":0,"!":1," ":2,"x":3},"merges":[]}})");
  const Tokenizer never = make(j);
  try {
    (void)never.encode(std::string(800, 'a'), false);
    ADD_FAILURE() << "a catastrophically backtracking regex ran to the end";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backtracks catastrophically"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace attnscope::testing
