#include "tokenizer/added_tokens.hpp"

#include <algorithm>

#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

namespace {

// The code point that ends s[0, end) (s valid UTF-8, end > 0).
char32_t code_point_before(const std::string& s, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  return next_code_point(s, i);
}

// Where the run of whitespace that ends at `end` begins.
size_t whitespace_run_start(const std::string& s, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!is_white_space(next_code_point(s, i))) break;
    end = start;
  }
  return end;
}

// Where the run of whitespace that starts at `begin` ends.
size_t whitespace_run_end(const std::string& s, size_t begin) {
  while (begin < s.size()) {
    size_t i = begin;
    if (!is_white_space(next_code_point(s, i))) break;
    begin = i;
  }
  return begin;
}

}  // namespace

void AddedTokens::Matcher::add(std::string pattern, size_t token) {
  if (pattern.empty()) return;  // an empty string matches nothing useful
  by_first_byte[static_cast<unsigned char>(pattern[0])].push_back(patterns.size());
  patterns.push_back(std::move(pattern));
  token_index.push_back(token);
}

void AddedTokens::Matcher::finish() {
  for (auto& list : by_first_byte)
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t a, size_t b) { return patterns[a].size() > patterns[b].size(); });
}

AddedTokens AddedTokens::parse(
    const Json& list, const Origin& origin, const Normalizer* normalizer,
    const std::function<std::optional<int32_t>(const std::string&)>& model_id, int64_t model_size) {
  AddedTokens out;
  if (list.is_null()) return out;
  if (!list.is_array()) origin.fail("field 'added_tokens' must be a list");
  int64_t next_id = model_size;
  for (const Json& t : list) {
    const std::string where = "added_tokens entry";
    AddedToken a;
    a.content = origin.string_required(t, "content", where);
    const Json& id = origin.member(t, "id", where);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      origin.fail(where + " '" + a.content + "' has id " + id.dump() +
                  ", expected a non-negative 32-bit integer");
    if (invalid_utf8_offset(a.content) != kValidUtf8)
      origin.fail(where + " with id " + id.dump() + " is not valid UTF-8");
    // `tokenizers` does not trust the listed id: content in the model's vocabulary keeps the
    // model's id, anything else gets the next free id past the vocabulary and earlier additions.
    if (auto in_model = model_id(a.content)) {
      a.id = *in_model;
    } else {
      if (next_id > INT32_MAX)
        origin.fail(where + " '" + a.content + "' would get id " + std::to_string(next_id) +
                    ", past the 32-bit ids a tokenizer has");
      a.id = static_cast<int32_t>(next_id);
    }
    next_id = std::max<int64_t>(next_id, int64_t{a.id} + 1);
    a.special = origin.bool_or(t, "special", where, false);
    a.lstrip = origin.bool_or(t, "lstrip", where, false);
    a.rstrip = origin.bool_or(t, "rstrip", where, false);
    a.single_word = origin.bool_or(t, "single_word", where, false);
    a.normalized = origin.bool_or(t, "normalized", where, !a.special);
    const size_t index = out.tokens_.size();
    out.by_id_[a.id] = index;
    out.by_content_[a.content] = index;
    a.decode_text =
        a.normalized && normalizer != nullptr ? normalizer->normalize(a.content) : a.content;
    if (a.normalized)
      out.normalized_.add(a.decode_text, index);
    else
      out.raw_.add(a.content, index);
    out.tokens_.push_back(std::move(a));
  }
  out.raw_.finish();
  out.normalized_.finish();
  return out;
}

const AddedToken* AddedTokens::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::find_content(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<Piece> AddedTokens::split_raw(const std::string& text) const {
  return split_with(text, true, raw_);
}

std::vector<Piece> AddedTokens::split_normalized(Piece piece) const {
  if (normalized_.empty()) {
    std::vector<Piece> out;
    if (!piece.text.empty()) out.push_back(std::move(piece));
    return out;
  }
  return split_with(piece.text, piece.at_origin, normalized_);
}

std::vector<Piece> AddedTokens::split_with(const std::string& text, bool at_origin,
                                           const Matcher& m) const {
  std::vector<Piece> out;
  const auto push_text = [&](size_t begin, size_t end) {
    if (begin >= end) return;
    Piece p;
    p.text = text.substr(begin, end - begin);
    p.at_origin = at_origin && begin == 0;
    out.push_back(std::move(p));
  };
  size_t emitted = 0;  // text before this is already in `out`
  size_t pos = 0;
  while (!m.empty() && pos < text.size()) {
    const auto& candidates = m.by_first_byte[static_cast<unsigned char>(text[pos])];
    const size_t* found = nullptr;
    for (const size_t& k : candidates)
      if (text.compare(pos, m.patterns[k].size(), m.patterns[k]) == 0) {
        found = &k;
        break;
      }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[m.token_index[*found]];
    size_t start = pos, stop = pos + m.patterns[*found].size();
    // Matching goes on after this match whether or not it is used, as Aho-Corasick's iterator does.
    pos = stop;
    if (tok.single_word) {
      const bool word_before = start > 0 && is_word_char(code_point_before(text, start));
      size_t after = stop;
      const bool word_after = stop < text.size() && is_word_char(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) start = std::max(whitespace_run_start(text, start), emitted);
    if (tok.rstrip) stop = whitespace_run_end(text, stop);
    push_text(emitted, start);
    Piece t;
    t.text = text.substr(start, stop - start);
    t.token = tok.id;
    out.push_back(std::move(t));
    emitted = stop;
  }
  push_text(emitted, text.size());
  return out;
}

}  // namespace attnscope::tok
