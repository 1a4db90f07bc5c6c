// The stages around BPE on hand-built tokenizer.json files: Split behaviors, Digits, Metaspace,
// normalizers, added tokens (longest match, lstrip/rstrip, single_word, normalized) and the
// post-processor template. Each expectation is derived in its comment from `tokenizers`' rules.
#include <gtest/gtest.h>

#include "tokenizer_fixtures.hpp"

namespace attnscope::testing {
namespace {

Json split_then_bytes(const Json& split) {
  return Json{{"type", "Sequence"}, {"pretokenizers", Json::array({split, byte_level_no_regex()})}};
}

Json dash_split(const std::string& behavior, bool invert = false) {
  return split_then_bytes({{"type", "Split"},
                           {"pattern", {{"String", "-"}}},
                           {"behavior", behavior},
                           {"invert", invert}});
}

// Merges a+- = 256, -+b = 257, -+- = 258: which one applies shows where the words were cut.
Json dash_json(const std::string& behavior, bool invert = false) {
  return byte_level_json({{"a", "-"}, {"-", "b"}, {"-", "-"}}, dash_split(behavior, invert));
}

TEST(TokenizerPipeline, SplitBehaviors) {
  // Without a split "a-b" is one word: a+- merges first (rank 0).
  expect_ids(byte_level_json({{"a", "-"}, {"-", "b"}, {"-", "-"}}, byte_level_no_regex()), "a-b",
             false, {256, 'b'});
  expect_ids(dash_json("Isolated"), "a-b", false, {'a', '-', 'b'});
  expect_ids(dash_json("Removed"), "a-b", false, {'a', 'b'});
  expect_ids(dash_json("MergedWithPrevious"), "a-b", false, {256, 'b'});  // "a-" "b"
  expect_ids(dash_json("MergedWithNext"), "a-b", false, {'a', 257});      // "a" "-b"
  // a - - b: Contiguous joins the adjacent matches into "--".
  expect_ids(dash_json("Isolated"), "a--b", false, {'a', '-', '-', 'b'});
  expect_ids(dash_json("Contiguous"), "a--b", false, {'a', 258, 'b'});
  // Only a match that follows a non-match joins it: "a-" "-" "b" and "a" "-" "-b".
  expect_ids(dash_json("MergedWithPrevious"), "a--b", false, {256, '-', 'b'});
  expect_ids(dash_json("MergedWithNext"), "a--b", false, {'a', '-', 257});
  // invert: the text between dashes is the match, so Removed keeps only the dash.
  expect_ids(dash_json("Removed", true), "a-b", false, {'-'});
}

TEST(TokenizerPipeline, Digits) {
  const auto digits = [](bool individual) {
    return split_then_bytes({{"type", "Digits"}, {"individual_digits", individual}});
  };
  // Merge 1+2 = 256 applies only when "123" stays one word.
  expect_ids(byte_level_json({{"1", "2"}}, digits(true)), "a123", false, {'a', '1', '2', '3'});
  expect_ids(byte_level_json({{"1", "2"}}, digits(false)), "a123", false, {'a', 256, '3'});
}

TEST(TokenizerPipeline, Normalizers) {
  Json j = byte_level_json({}, byte_level_no_regex());
  // e + combining acute: NFC composes it to é (C3 A9).
  expect_ids(j, "e\u0301", false, {'e', 0xCC, 0x81});
  j["normalizer"] = {{"type", "NFC"}};
  expect_ids(j, "e\u0301", false, {0xC3, 0xA9});
  j["normalizer"] = {{"type", "NFKC"}};
  expect_ids(j, "\uFB01", false, {'f', 'i'});  // the fi ligature
  j["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       Json::array(
           {Json{{"type", "Lowercase"}},
            Json{{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", "_"}}})}};
  expect_ids(j, "A \t\u0085B", false, {'a', '_', 'b'});
}

// Metaspace fixtures: ▁=259 h=260 i=261, merges i+▁ (rank 0) = 262, ▁+h = 263, ▁h+i = 264.
Json metaspace_json(const std::string& scheme, bool split) {
  Json j = sentencepiece_json({"\u2581", "h", "i"},
                              {{"i", "\u2581"}, {"\u2581", "h"}, {"\u2581h", "i"}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\u2581"},
                        {"prepend_scheme", scheme},
                        {"split", split}};
  j["decoder"] = {{"type", "Metaspace"},
                  {"replacement", "\u2581"},
                  {"prepend_scheme", scheme},
                  {"split", split}};
  return j;
}

TEST(TokenizerPipeline, Metaspace) {
  // split: "▁hi" "▁hi", each merging to ▁hi.
  expect_ids(metaspace_json("always", true), "hi hi", false, {264, 264});
  // No split: "▁hi▁hi" is one word and i+▁ (rank 0) merges first: ▁ h i▁ h i -> ▁h i▁ h i.
  expect_ids(metaspace_json("always", false), "hi hi", false, {263, 262, 260, 261});
  // "first" prepends only to the piece at the start of the text, not after "<s>".
  expect_ids(metaspace_json("first", true), "<s>hi hi", false, {1, 260, 261, 264});
  expect_ids(metaspace_json("first", true), "hi hi<s>", false, {264, 264, 1});
  expect_ids(metaspace_json("always", true), "<s>hi hi", false, {1, 264, 264});
  expect_ids(metaspace_json("never", true), "hi hi", false, {260, 261, 264});
  const Tokenizer t = make(metaspace_json("first", true));
  EXPECT_EQ(t.decode(t.encode("hi hi", false)), "hi hi");
}

// Added tokens on a byte-level vocab of the 256 bytes (so they get ids 256, 257, ... in order).
TEST(TokenizerPipeline, AddedTokensLongestMatchWins) {
  Json j = byte_level_json({}, byte_level_no_regex());
  j["added_tokens"] = Json::array({added_token(256, "<x>", true), added_token(257, "<x>y", true)});
  // At "<x>y" both match; the longer one wins. The last "<x>" stands alone.
  expect_ids(j, "a<x>yb<x>", false, {'a', 257, 'b', 256});
}

TEST(TokenizerPipeline, AddedTokensStripWhitespace) {
  Json j = byte_level_json({}, byte_level_no_regex());
  j["added_tokens"] = Json::array({added_token(256, "<m>", true, /*lstrip=*/true),
                                   added_token(257, "<n>", true, false, /*rstrip=*/true)});
  // <m> swallows the two spaces before it, <n> the two after it; " b" keeps its space.
  expect_ids(j, "a  <m> b<n>  c", false, {'a', 256, ' ', 'b', 257, 'c'});
}

TEST(TokenizerPipeline, AddedTokensSingleWord) {
  Json j = byte_level_json({}, byte_level_no_regex());
  j["added_tokens"] =
      Json::array({added_token(256, "ab", false, false, false, /*single_word=*/true)});
  // In "xab" it touches the word character x, so it is not cut out; " ab" at the end is.
  expect_ids(j, "xab ab", false, {'x', 'a', 'b', ' ', 256});
}

TEST(TokenizerPipeline, NormalizedAddedTokensMatchNormalizedText) {
  Json j = byte_level_json({}, byte_level_no_regex());
  j["normalizer"] = {{"type", "Lowercase"}};
  j["added_tokens"] =
      Json::array({added_token(256, "hello", false, false, false, false, /*normalized=*/true)});
  // "HeLLo" lowercases to "hello", which then matches.
  expect_ids(j, "HeLLo!", false, {256, '!'});
}

TEST(TokenizerPipeline, BosTemplate) {
  Json j = byte_level_json({}, byte_level_no_regex());
  j["added_tokens"] = Json::array({added_token(256, "<|begin_of_text|>", true)});
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", Json::array({Json{{"type", "ByteLevel"},
                                                          {"add_prefix_space", true},
                                                          {"trim_offsets", false},
                                                          {"use_regex", true}},
                                                     bos_template("<|begin_of_text|>", 256)})}};
  expect_ids(j, "hi", true, {256, 'h', 'i'});
  expect_ids(j, "hi", false, {'h', 'i'});
  expect_ids(j, "", true, {256});
  // Written in the text, the special token is cut out whole; the template adds its own.
  expect_ids(j, "<|begin_of_text|>hi", true, {256, 256, 'h', 'i'});
  const Tokenizer t = make(j);
  const Ids ids = {256, 'h', 'i'};
  EXPECT_EQ(t.decode(ids, true), "hi");
  EXPECT_EQ(t.decode(ids, false), "<|begin_of_text|>hi");
  EXPECT_EQ(t.token_display(256), "<|begin_of_text|>");
  EXPECT_EQ(t.vocab_size(), 257);
}

}  // namespace
}  // namespace attnscope::testing
