// Small hand-built tokenizer.json files for the tokenizer tests, and one way to check an encoding.
// Expected ids in the tests are worked out by hand from `tokenizers`' rules; setting
// ATTNSCOPE_TOKENIZER_DUMP=<file> appends every checked case (JSON, text, ids) to <file> as one
// JSON line, so the expectations can be replayed against Hugging Face `tokenizers` itself.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "attnscope/tokenizer.hpp"

namespace attnscope::testing {

using Json = nlohmann::json;
using Ids = std::vector<int32_t>;

// GPT-2's printable symbol for each byte.
inline std::string byte_symbol(unsigned char b) {
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  unsigned cp = b;
  if (!printable) {
    unsigned n = 0;
    for (unsigned k = 0; k < b; ++k) {
      const bool p = (k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174;
      if (!p) ++n;
    }
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// `raw` bytes written in the byte-level alphabet ("Ġt" for " t").
inline std::string sym(const std::string& raw) {
  std::string out;
  for (unsigned char b : raw) out += byte_symbol(b);
  return out;
}

// A byte-level BPE tokenizer.json: the 256 byte symbols with id == byte value, then one token per
// merge (ids 256, 257, ... in merge order). Merges are given in raw bytes: {"a", "b"} merges the
// symbols of "a" and "b".
inline Json byte_level_json(const std::vector<std::pair<std::string, std::string>>& merges,
                            Json pre_tokenizer = Json{{"type", "ByteLevel"},
                                                      {"add_prefix_space", false},
                                                      {"trim_offsets", true},
                                                      {"use_regex", true}}) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_symbol(static_cast<unsigned char>(b))] = b;
  Json merge_list = Json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    merge_list.push_back(Json::array({sym(a), sym(b)}));
    if (!vocab.contains(sym(a + b))) vocab[sym(a + b)] = next++;
  }
  return Json{{"version", "1.0"},
              {"added_tokens", Json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", std::move(pre_tokenizer)},
              {"post_processor", nullptr},
              {"decoder",
               {{"type", "ByteLevel"},
                {"add_prefix_space", true},
                {"trim_offsets", true},
                {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", merge_list}}}};
}

// ByteLevel pre-tokenizer without GPT-2's regex: the whole text is one word.
inline Json byte_level_no_regex() {
  return Json{{"type", "ByteLevel"},
              {"add_prefix_space", false},
              {"trim_offsets", true},
              {"use_regex", false}};
}

inline Json added_token(int32_t id, const std::string& content, bool special, bool lstrip = false,
                        bool rstrip = false, bool single_word = false, bool normalized = false) {
  return Json{{"id", id},          {"content", content}, {"single_word", single_word},
              {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
              {"special", special}};
}

// The Llama-style single template: BOS (id `bos`, content `content`) then the text.
inline Json bos_template(const std::string& content, int32_t bos) {
  return Json{
      {"type", "TemplateProcessing"},
      {"single", Json::array({Json{{"SpecialToken", {{"id", content}, {"type_id", 0}}}},
                              Json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", Json::array()},
      {"special_tokens",
       {{content,
         {{"id", content}, {"ids", Json::array({bos})}, {"tokens", Json::array({content})}}}}}};
}

// A SentencePiece-style (Llama 2) tokenizer.json: <unk>=0, <s>=1, </s>=2, <0x00>..<0xFF> = 3..258,
// then `pieces` from id 259 in order, then one token per merge not already listed.
inline Json sentencepiece_json(const std::vector<std::string>& pieces,
                               const std::vector<std::pair<std::string, std::string>>& merges,
                               bool byte_fallback = true, bool fuse_unk = true) {
  Json vocab = Json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const auto& p : pieces) vocab[p] = next++;
  Json merge_list = Json::array();
  for (const auto& [a, b] : merges) {
    merge_list.push_back(a + " " + b);  // the older "a b" form, as Llama 2's file has it
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
  }
  const std::string meta = "\u2581";
  return Json{
      {"version", "1.0"},
      {"added_tokens", Json::array({added_token(0, "<unk>", true), added_token(1, "<s>", true),
                                    added_token(2, "</s>", true)})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         Json::array(
             {Json{{"type", "Prepend"}, {"prepend", meta}},
              Json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", meta}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", bos_template("<s>", 1)},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", meta}}}, {"content", " "}},
                      Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}},
                      Json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", fuse_unk},
        {"byte_fallback", byte_fallback},
        {"vocab", vocab},
        {"merges", merge_list}}}};
}

inline Tokenizer make(const Json& j) {
  return Tokenizer::from_json(j.dump(), "test.json");
}

// encode(text, add_special) must give `expected`; the case is also dumped when asked (see top).
inline void expect_ids(const Json& j, const std::string& text, bool add_special,
                       const Ids& expected) {
  const Ids got = make(j).encode(text, add_special);
  EXPECT_EQ(got, expected) << "text: " << text;
  if (const char* dump = std::getenv("ATTNSCOPE_TOKENIZER_DUMP")) {
    std::ofstream out(dump, std::ios::app);
    out << Json{{"tokenizer", j}, {"text", text}, {"add", add_special}, {"ids", expected}}.dump()
        << "\n";
  }
}

// The id of `token` in a fixture's vocab.
inline int32_t vocab_id(const Json& j, const std::string& token) {
  return j["model"]["vocab"].at(token).get<int32_t>();
}

}  // namespace attnscope::testing
