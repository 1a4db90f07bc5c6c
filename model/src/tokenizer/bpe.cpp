#include "tokenizer/bpe.hpp"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "attnscope/error.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

Bpe Bpe::parse(const Json& model, const Origin& origin) {
  if (!model.is_object()) origin.fail("field 'model' must be a JSON object");
  const std::string type = origin.string_or(model, "type", "model", "BPE");
  if (type != "BPE") origin.fail("model type '" + type + "' is not supported; supported: BPE");
  Bpe bpe;
  const std::string where = "model (BPE)";
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0))
    origin.fail(where + " has dropout " + dropout->dump() +
                ": random merges are not supported (dropout must be null or 0)");
  bpe.prefix_ = origin.string_or(model, "continuing_subword_prefix", where, "");
  bpe.suffix_ = origin.string_or(model, "end_of_word_suffix", where, "");
  bpe.fuse_unk_ = origin.bool_or(model, "fuse_unk", where, false);
  bpe.byte_fallback_ = origin.bool_or(model, "byte_fallback", where, false);
  bpe.ignore_merges_ = origin.bool_or(model, "ignore_merges", where, false);

  const Json& vocab = origin.member(model, "vocab", where);
  if (!vocab.is_object()) origin.fail(where + " field 'vocab' must be an object of token: id");
  bpe.vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() > INT32_MAX)
      origin.fail(where + " vocab entry '" + token + "' has id " + id_json.dump() +
                  ", expected a non-negative 32-bit integer");
    if (invalid_utf8_offset(token) != kValidUtf8)
      origin.fail(where + " vocab has a token that is not valid UTF-8");
    bpe.vocab_[token] = static_cast<int32_t>(id_json.get<int64_t>());
  }
  // The id table is dense, so its size follows the largest id: a vocabulary numbers its tokens
  // 0..n-1 (real ones have no gaps), and a stray huge id must not cost gigabytes to load.
  int64_t top = -1;
  for (const auto& [token, id] : bpe.vocab_) top = std::max<int64_t>(top, id);
  const int64_t entries = static_cast<int64_t>(bpe.vocab_.size());
  if (top >= 2 * entries + 1024)
    origin.fail(where + " vocab ids run up to " + std::to_string(top) + " for " +
                std::to_string(entries) +
                " entries; a vocabulary numbers its tokens 0 to n-1 (a few gaps at most)");
  bpe.id_to_token_.resize(static_cast<size_t>(top + 1));
  bpe.has_id_.resize(static_cast<size_t>(top + 1), false);
  for (const auto& [token, id] : bpe.vocab_) {
    bpe.id_to_token_[static_cast<size_t>(id)] = token;
    bpe.has_id_[static_cast<size_t>(id)] = true;
  }

  const std::string unk = origin.string_or(model, "unk_token", where, "");
  if (!unk.empty()) {
    // `tokenizers` loads such a file and fails only when a word needs the unk token; so do we.
    bpe.unk_token_ = unk;
    auto it = bpe.vocab_.find(unk);
    if (it != bpe.vocab_.end()) bpe.unk_id_ = it->second;
  }

  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = bpe.vocab_.find(std::string_view(name));
    bpe.byte_ids_[static_cast<size_t>(b)] = it == bpe.vocab_.end() ? -1 : it->second;
  }

  // Merges come as "a b" strings (older files) or ["a", "b"] pairs (newer ones, which allow
  // spaces inside tokens). A later duplicate replaces an earlier one, as `tokenizers`' map does.
  auto merges_it = model.find("merges");
  if (merges_it != model.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) origin.fail(where + " field 'merges' must be a list");
    bpe.merges_.reserve(merges_it->size());
    uint32_t rank = 0;
    for (const Json& m : *merges_it) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos)
          origin.fail(where + " merge '" + s + "' is not two tokens separated by a space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        origin.fail(where + " merge #" + std::to_string(rank) + " is " + m.dump() +
                    ", expected \"a b\" or [\"a\", \"b\"]");
      }
      const auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b);
      if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end())
        origin.fail(where + " merge #" + std::to_string(rank) + " ('" + a + "' + '" + b +
                    "') uses a token that is not in the vocab");
      std::string merged = a;
      if (!bpe.prefix_.empty() && b.compare(0, bpe.prefix_.size(), bpe.prefix_) == 0)
        merged += b.substr(bpe.prefix_.size());
      else
        merged += b;
      const auto im = bpe.vocab_.find(merged);
      if (im == bpe.vocab_.end())
        origin.fail(where + " merge #" + std::to_string(rank) + " makes '" + merged +
                    "', which is not in the vocab");
      bpe.merges_[pair_key(ia->second, ib->second)] = MergeInfo{rank, im->second};
      ++rank;
    }
  }
  return bpe;
}

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[static_cast<size_t>(id)])
    return nullptr;
  return &id_to_token_[static_cast<size_t>(id)];
}

void Bpe::tokenize(const std::string& word, Cache& cache, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // Llama 3: a whole word that is itself a token is taken as is, whatever the merges would do.
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  auto hit = cache.find(word);
  if (hit != cache.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  cache.emplace(word, std::move(ids));
}

namespace {

struct Symbol {
  int32_t id;
  int64_t prev, next;  // neighbours in the live list, -1 at the ends
  bool removed;
};

struct Candidate {
  uint32_t rank;
  size_t pos;
  int32_t new_id;
};

// Top of the queue = lowest rank, then leftmost position.
struct LaterFirst {
  bool operator()(const Candidate& x, const Candidate& y) const {
    if (x.rank != y.rank) return x.rank > y.rank;
    return x.pos > y.pos;
  }
};

}  // namespace

void Bpe::merge_word(const std::string& word, std::vector<int32_t>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  const auto add = [&](int32_t id) {
    const auto n = static_cast<int64_t>(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back(Symbol{id, n - 1, -1, false});
  };
  // Unknown characters wait here so consecutive ones can fuse into one unk (fuse_unk).
  bool pending_unk = false;
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    i += utf8_length(static_cast<unsigned char>(word[i]));
    if (i > word.size()) i = word.size();
    std::string piece;
    if (start != 0) piece += prefix_;
    piece.append(word, start, i - start);
    if (i == word.size()) piece += suffix_;
    auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      if (pending_unk) add(*unk_id_);
      pending_unk = false;
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : piece) all = all && byte_ids_[b] >= 0;
      if (all) {
        // Pending unk is kept: `tokenizers` only flushes it before an in-vocab character.
        for (unsigned char b : piece) add(byte_ids_[b]);
        continue;
      }
    }
    if (!unk_token_.empty()) {
      if (!unk_id_)
        throw Error("BPE needs its unk_token '" + unk_token_ +
                    "' for a character it cannot spell, but that token is not in the vocab");
      if (pending_unk && !fuse_unk_) add(*unk_id_);
      pending_unk = true;
    }
    // Without an unk_token an unknown character is dropped, as `tokenizers` drops it.
  }
  if (pending_unk) add(*unk_id_);

  std::priority_queue<Candidate, std::vector<Candidate>, LaterFirst> queue;
  for (size_t p = 0; p + 1 < syms.size(); ++p)
    if (const MergeInfo* m = find_merge(syms[p].id, syms[p + 1].id))
      queue.push(Candidate{m->rank, p, m->new_id});
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = syms[top.pos];
    if (left.removed || left.next < 0) continue;
    const auto right_pos = static_cast<size_t>(left.next);
    const Symbol right = syms[right_pos];
    // Skip entries made stale by earlier merges: the pair here must still make the same token.
    const MergeInfo* now = find_merge(left.id, right.id);
    if (now == nullptr || now->new_id != top.new_id) continue;
    left.id = top.new_id;
    left.next = right.next;
    syms[right_pos].removed = true;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = static_cast<int64_t>(top.pos);
    if (left.prev >= 0) {
      const auto prev_pos = static_cast<size_t>(left.prev);
      if (const MergeInfo* m = find_merge(syms[prev_pos].id, left.id))
        queue.push(Candidate{m->rank, prev_pos, m->new_id});
    }
    if (left.next >= 0) {
      if (const MergeInfo* m = find_merge(left.id, syms[static_cast<size_t>(left.next)].id))
        queue.push(Candidate{m->rank, top.pos, m->new_id});
    }
  }
  for (const Symbol& s : syms)
    if (!s.removed) out.push_back(s.id);
}

}  // namespace attnscope::tok
