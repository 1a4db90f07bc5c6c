// The BPE model on hand-built vocabularies: merge order, both merge formats, ignore_merges, the
// GPT-2 word regex (and its `\s`, which must include U+0085), SentencePiece-style byte fallback
// and unknown-character fusing. Each expectation is derived in its comment from `tokenizers`'
// rules.
#include <gtest/gtest.h>

#include "tokenizer_fixtures.hpp"

namespace attnscope::testing {
namespace {

// Byte-level fixtures give every byte the id of its value: 'a' = 97, ' ' = 32, ...

TEST(TokenizerBpe, LowestRankMergesFirst) {
  // (a,b) has rank 0, (b,c) rank 1: "abc" merges a+b first and "ab"+"c" has no merge.
  expect_ids(byte_level_json({{"a", "b"}, {"b", "c"}}, byte_level_no_regex()), "abc", false,
             {256, 'c'});
  // Ranks swapped: b+c wins, "bc" is now id 256.
  expect_ids(byte_level_json({{"b", "c"}, {"a", "b"}}, byte_level_no_regex()), "abc", false,
             {'a', 256});
}

TEST(TokenizerBpe, TiesGoToTheLeftmostPair) {
  const Json j = byte_level_json({{"a", "a"}}, byte_level_no_regex());
  // Pairs at 0 and 1 tie; the leftmost merges and consumes the middle "a".
  expect_ids(j, "aaa", false, {256, 'a'});
  // a a a a a: merges at 0, then 2 (1 and 3 are stale): aa aa a.
  expect_ids(j, "aaaaa", false, {256, 256, 'a'});
  // With aa+aa (rank 1) the two "aa" merge afterwards: aaaa a.
  expect_ids(byte_level_json({{"a", "a"}, {"aa", "aa"}}, byte_level_no_regex()), "aaaaa", false,
             {257, 'a'});
}

TEST(TokenizerBpe, OldStringMergesEqualNewPairMerges) {
  Json pairs = byte_level_json({{"a", "b"}, {"ab", "c"}, {" ", "a"}}, byte_level_no_regex());
  Json strings = pairs;
  strings["model"]["merges"] = Json::array();
  for (const Json& m : pairs["model"]["merges"])
    strings["model"]["merges"].push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  // abc -> ab c -> abc (257); in " ab" a+b (rank 0) beats space+a (rank 2): Ġ ab.
  expect_ids(pairs, "abc ab", false, {257, ' ', 256});
  expect_ids(strings, "abc ab", false, {257, ' ', 256});
  // " a" alone does merge: Ġa (258).
  expect_ids(strings, "b a", false, {'b', 258});
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordsFromTheVocab) {
  Json j = byte_level_json({{"a", "b"}}, byte_level_no_regex());
  j["model"]["vocab"]["abc"] = 300;  // in the vocab, but no merge builds it
  // Merges alone give ab c.
  expect_ids(j, "abc", false, {256, 'c'});
  j["model"]["ignore_merges"] = true;
  // The whole word is a token, so it is taken as is.
  expect_ids(j, "abc", false, {300});
  // "abcabc" is not a token: back to merges.
  expect_ids(j, "abcabc", false, {256, 'c', 256, 'c'});
}

TEST(TokenizerBpe, ContinuingSubwordPrefix) {
  const Json j = {{"model",
                   {{"type", "BPE"},
                    {"continuing_subword_prefix", "##"},
                    {"vocab", {{"a", 0}, {"##b", 1}, {"ab", 2}, {"##a", 3}}},
                    {"merges", Json::array({Json::array({"a", "##b"})})}}}};
  // Non-initial characters carry the prefix; a + ##b makes "ab" (the prefix is dropped).
  expect_ids(j, "ab", false, {2});
  // a ##a ##b: no merge for (a, ##a) or (##a, ##b).
  expect_ids(j, "aab", false, {0, 3, 1});
}

TEST(TokenizerBpe, Gpt2RegexSplitsWordsBeforeMerging) {
  const Json j =
      byte_level_json({{" ", "t"}, {" t", "h"}, {" th", "e"}, {"'", "s"}, {" ", " "}, {"s", " "}});
  // Words: "it", "'s", " the" (the merge s+space never sees "s " across words).
  expect_ids(j, "it's the", false, {'i', 't', 259, 258});
  // "a", then \s+(?!\S) takes two of the three spaces, then " b".
  expect_ids(j, "a   b", false, {'a', 260, ' ', 'b'});
}

TEST(TokenizerBpe, WhitespaceIsExactlyUnicodeWhiteSpace) {
  // `tokenizers`' \s is Unicode White_Space: it includes U+0085 (NEL, bytes C2 85). In "a \u0085b"
  // the space and NEL are both whitespace: \s+(?!\S) gives " " and \s+ gives NEL alone, so the
  // merge (" ", C2) never applies. Were NEL not whitespace, " ?[^\s\p{L}\p{N}]+" would take
  // " \u0085" as one word: 256 133.
  expect_ids(byte_level_json({{" ", "\xC2"}}), "a \u0085b", false, {'a', ' ', 0xC2, 0x85, 'b'});
  // U+180E (E1 A0 8E) left White_Space in Unicode 6.3 (PCRE2 10.42's \s still has it): here
  // " ?[^\s\p{L}\p{N}]+" takes " \u180E" as one word and the merge (" ", E1) applies.
  expect_ids(byte_level_json({{" ", "\xE1"}}), "a \u180Eb", false, {'a', 256, 0xA0, 0x8E, 'b'});
}

TEST(TokenizerBpe, NegatedWhitespaceInAClassIncludesNextLine) {
  // [^\S\n]+ is "whitespace but not LF": NEL is in it, so Removed drops it.
  const Json split = {{"type", "Split"},
                      {"pattern", {{"Regex", "[^\\S\\n]+"}}},
                      {"behavior", "Removed"},
                      {"invert", false}};
  const Json pre = {{"type", "Sequence"},
                    {"pretokenizers", Json::array({split, byte_level_no_regex()})}};
  expect_ids(byte_level_json({}, pre), "a\u0085b\nc", false, {'a', 'b', '\n', 'c'});
}

// SentencePiece fixtures: <unk>=0 <s>=1 </s>=2, byte <0xNN> = 3 + NN, then ▁=259 h=260 i=261
// x=262 y=263, merges ▁h=264 ▁hi=265.
Json sp(bool byte_fallback = true, bool fuse_unk = true) {
  return sentencepiece_json({"\u2581", "h", "i", "x", "y"}, {{"\u2581", "h"}, {"\u2581h", "i"}},
                            byte_fallback, fuse_unk);
}

TEST(TokenizerBpe, SentencePieceByteFallback) {
  // "hi 😀" -> "▁hi▁😀": ▁hi, ▁, then 😀 (not in the vocab) as its UTF-8 bytes F0 9F 98 80.
  expect_ids(sp(), "hi \U0001F600", true, {1, 265, 259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80});
  expect_ids(sp(), "hi \U0001F600", false, {265, 259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80});
}

TEST(TokenizerBpe, SentencePieceUnknownsFuse) {
  // Without byte fallback each 😀 is unknown; fuse_unk makes the run one <unk>.
  expect_ids(sp(false, true), "x\U0001F600\U0001F600y", true, {1, 259, 262, 0, 263});
  expect_ids(sp(false, false), "x\U0001F600\U0001F600y", true, {1, 259, 262, 0, 0, 263});
}

TEST(TokenizerBpe, SentencePieceEmptyTextAndSpecials) {
  // Prepend leaves an empty string empty: only the template's BOS.
  expect_ids(sp(), "", true, {1});
  expect_ids(sp(), "", false, {});
  // "<s>" is cut out first; the rest is normalized on its own, so it gets its own "▁".
  expect_ids(sp(), "<s>hi", true, {1, 1, 265});
}

TEST(TokenizerBpe, SentencePieceDecodeAndDisplay) {
  const Tokenizer t = make(sp());
  const std::string text = "hi \U0001F600 x";
  EXPECT_EQ(t.decode(t.encode(text)), text);
  const Ids bos_hi = {1, 265};
  EXPECT_EQ(t.decode(bos_hi, true), "hi");
  EXPECT_EQ(t.decode(bos_hi, false), "<s> hi");  // Strip only removes a leading space
  EXPECT_EQ(t.token_display(265), " hi");
  EXPECT_EQ(t.token_display(3 + 0x0A), "\n");
  EXPECT_EQ(t.token_display(3 + 0xE2), "<0xE2>");
  EXPECT_EQ(t.token_display(1), "<s>");
  EXPECT_EQ(t.id_to_token(265), "\u2581hi");
  EXPECT_EQ(t.token_to_id("<0x0A>"), 3 + 0x0A);
  EXPECT_EQ(t.token_to_id("nope"), std::nullopt);
  EXPECT_EQ(t.vocab_size(), 266);
  EXPECT_EQ(t.kind(), "SentencePiece BPE (byte fallback)");
}

}  // namespace
}  // namespace attnscope::testing
