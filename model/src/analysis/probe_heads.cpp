// Induction and retrieval scores (head_stats.hpp): each runs the model on a synthetic sequence
// built to make one behaviour measurable, and reads every layer's q, k as the forward passes
// (ForwardOptions::observe), so only one layer's attention inputs are alive at a time.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "analysis/row_softmax.hpp"
#include "attnscope/error.hpp"
#include "attnscope/head_stats.hpp"
#include "attnscope/parallel.hpp"

namespace attnscope {

using namespace analysis_detail;  // NOLINT: this file is the statistics' own implementation

namespace {

// A uniform draw from [0, bound) by rejection: std::uniform_int_distribution is not specified
// bit for bit, and the GUI, the CLI and the tests must agree on the sequence everywhere.
uint64_t draw(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  for (;;) {
    const uint64_t x = rng();
    if (x < limit) return x % bound;
  }
}

// What the tokenizer puts before a text when it adds special tokens (Llama's BOS), found by
// encoding a word both ways: the post-processor's template is the only thing that differs.
std::vector<int32_t> special_prefix(const Model& model) {
  if (!model.has_tokenizer()) return {};
  const Tokenizer& tok = model.tokenizer();
  const std::vector<int32_t> with = tok.encode("the", true), plain = tok.encode("the", false);
  const auto at = std::search(with.begin(), with.end(), plain.begin(), plain.end());
  if (plain.empty() || at == with.end()) return {};
  return {with.begin(), at};
}

// tokenizer.json's added_tokens (BOS, EOS, chat markers): ids that never occur in plain text,
// so a "random text" of them would test something else.
std::set<int32_t> added_token_ids(const Model& model) {
  const std::filesystem::path path =
      std::filesystem::path(model.checkpoint().dir()) / "tokenizer.json";
  std::ifstream in(path, std::ios::binary);
  std::set<int32_t> ids;
  if (!in) return ids;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("added_tokens") || !j["added_tokens"].is_array()) return ids;
  for (const nlohmann::json& t : j["added_tokens"]) {
    if (t.is_object() && t.contains("id") && t["id"].is_number_integer())
      ids.insert(t["id"].get<int32_t>());
  }
  return ids;
}

std::vector<int32_t> eligible_ids(const Model& model) {
  const int64_t V = model.config().vocab_size;
  std::vector<int32_t> ids;
  if (!model.has_tokenizer()) {
    for (int64_t id = 0; id < V; ++id) ids.push_back(static_cast<int32_t>(id));
    return ids;
  }
  const Tokenizer& tok = model.tokenizer();
  const std::set<int32_t> added = added_token_ids(model);
  const int64_t n = std::min(V, tok.vocab_size());
  for (int64_t id = 0; id < n; ++id) {
    const auto i = static_cast<int32_t>(id);
    if (!added.count(i) && tok.id_to_token(i)) ids.push_back(i);
  }
  return ids;
}

// Positions the model can take: max_positions when config.json gives one.
int64_t position_limit(const Model& model) {
  const int64_t p = model.config().max_positions;
  return p > 0 ? p : std::numeric_limits<int64_t>::max() / 4;
}

// Runs `score` on every head of `la` in parallel; returns [H].
template <class F>
std::vector<double> per_head(const LayerAttention& la, const CancelToken& cancel, F&& score) {
  check_layer(la);
  const int64_t H = la.problem.shape.heads;
  const int threads = stat_threads();
  std::vector<RowScratch> scratch(static_cast<size_t>(threads));
  std::vector<double> out(static_cast<size_t>(H), 0.0);
  cancel.throw_if_cancelled();
  ThreadPool::global().parallel_for(H, threads, [&](int64_t h, int worker) {
    cancel.throw_if_cancelled();
    const HeadView v = head_view(la, h);
    RowScratch& s = scratch[static_cast<size_t>(worker)];
    s.size_for(v);
    out[static_cast<size_t>(h)] = score(v, s);
  });
  cancel.throw_if_cancelled();
  return out;
}

// Forward on `ids` with `layer_scores` run on each layer as it passes: the [layers x H] table.
template <class F>
HeadStatTable probe(const Model& model, const std::vector<int32_t>& ids, HeadStat stat,
                    const HeadStatsOptions& o, F&& layer_scores) {
  const ModelConfig& c = model.config();
  HeadStatTable t;
  t.stat = stat;
  t.layers = c.layers;
  t.heads = c.heads;
  t.tokens = static_cast<int64_t>(ids.size());
  t.values.assign(static_cast<size_t>(c.layers * c.heads), std::nan(""));
  ForwardOptions fo;
  fo.backend = o.backend;
  fo.keep_logits = false;
  fo.cancel = o.cancel;
  fo.observe = [&](int64_t layer, const LayerAttention& la) {
    const std::vector<double> v = layer_scores(la);
    std::copy(v.begin(), v.end(), t.values.begin() + layer * c.heads);
  };
  model.forward(ids, fo);
  o.cancel.report(1.0);
  return t;
}

// Filler for the haystack: plain statements with no digits, so the needle's number is the only
// one in the text, cycled in this order.
constexpr const char* kFiller[] = {
    " The grass is green and the sky is blue.",
    " A river runs past the old mill at the edge of the town.",
    " In the morning the baker opens his shop and sells fresh bread.",
    " The library keeps its oldest books in a quiet room upstairs.",
    " Children play in the park while their parents talk on the benches.",
    " The train to the coast leaves every hour from the main station.",
    " Farmers bring apples, pears and cheese to the market on weekends.",
    " A light wind moves the leaves of the tall trees by the road.",
    " The museum shows paintings of ships, harbours and stormy seas.",
    " After dinner the family walks along the lake until it gets dark.",
};

}  // namespace

InductionSequence induction_sequence(const Model& model, const HeadStatsOptions& o) {
  InductionSequence seq;
  const std::vector<int32_t> prefix = special_prefix(model);
  seq.offset = static_cast<int64_t>(prefix.size());
  const int64_t limit = position_limit(model);
  seq.n = std::min(o.induction_length, (limit - seq.offset) / 2);
  if (seq.n < 2) {
    throw Error("the induction probe needs at least 2 random tokens repeated (induction_length " +
                std::to_string(o.induction_length) + ", max_positions " +
                std::to_string(model.config().max_positions) + ")");
  }
  const std::vector<int32_t> pool = eligible_ids(model);
  if (pool.empty()) throw Error("the induction probe found no ordinary token ids to draw from");
  std::mt19937_64 rng(o.seed);
  std::vector<int32_t> r(static_cast<size_t>(seq.n));
  for (int32_t& id : r) id = pool[draw(rng, pool.size())];
  seq.ids = prefix;
  seq.ids.insert(seq.ids.end(), r.begin(), r.end());
  seq.ids.insert(seq.ids.end(), r.begin(), r.end());
  seq.note = "random tokens (" + std::to_string(pool.size()) + " eligible ids, seed " +
             std::to_string(o.seed) + "), n = " + std::to_string(seq.n) + ", repeated once" +
             (seq.offset > 0 ? ", after BOS" : "");
  if (seq.n < o.induction_length) seq.note += " (n capped by max_positions)";
  return seq;
}

std::vector<double> layer_induction_scores(const LayerAttention& la, const InductionSequence& seq,
                                           const CancelToken& cancel) {
  if (la.problem.shape.q_len != static_cast<int64_t>(seq.ids.size()) || seq.n < 2) {
    throw Error("the layer ran " + std::to_string(la.problem.shape.q_len) +
                " tokens; the induction sequence has " + std::to_string(seq.ids.size()));
  }
  const int64_t first = seq.offset + seq.n + 1, last = seq.offset + 2 * seq.n;  // queries
  return per_head(la, cancel, [&](const HeadView& v, RowScratch& s) {
    double sum = 0;
    for (int64_t i = first; i < last; ++i) {
      double z = 0;
      row_exp(v, i, s, z);
      sum += s.e[static_cast<size_t>(i - seq.n + 1)] / z;
    }
    return sum / double(last - first);
  });
}

HeadStatTable induction_scores(const Model& model, const HeadStatsOptions& o) {
  const InductionSequence seq = induction_sequence(model, o);
  HeadStatTable t = probe(model, seq.ids, HeadStat::induction, o, [&](const LayerAttention& la) {
    return layer_induction_scores(la, seq, o.cancel);
  });
  t.note = seq.note;
  return t;
}

RetrievalSequence retrieval_sequence(const Model& model, const HeadStatsOptions& o) {
  if (!model.has_tokenizer()) {
    throw Error("the retrieval probe writes its haystack, needle and question as text: " +
                model.checkpoint().dir() + " has no tokenizer.json");
  }
  if (o.retrieval_length < 1) {
    throw Error("retrieval_length must be >= 1 (got " + std::to_string(o.retrieval_length) + ")");
  }
  const Tokenizer& tok = model.tokenizer();
  const auto enc = [&](const std::string& text) { return tok.encode(text, false); };
  RetrievalSequence seq;
  // Seven digits, the first not 0: one number, split into tokens however the tokenizer splits it.
  std::mt19937_64 rng(o.seed ^ 0x9E3779B97F4A7C15ull);
  seq.value = std::to_string(1 + draw(rng, 9));
  for (int d = 1; d < 7; ++d) seq.value += std::to_string(draw(rng, 10));
  const std::vector<int32_t> prefix = special_prefix(model);
  const std::vector<int32_t> needle_head = enc(" The special magic number is");
  const std::vector<int32_t> value = enc(" " + seq.value);
  const std::vector<int32_t> needle_tail = enc(".");
  const std::vector<int32_t> question =
      enc(" What is the special magic number? The special magic number is");
  const int64_t fixed = static_cast<int64_t>(
      prefix.size() + needle_head.size() + needle_tail.size() + question.size() + 2 * value.size());
  constexpr int64_t kMinHaystack = 16;
  const int64_t room = position_limit(model) - fixed;
  if (room < kMinHaystack) {
    throw Error("the retrieval probe needs " + std::to_string(fixed + kMinHaystack) +
                " positions (its needle, question and answer take " + std::to_string(fixed) +
                " tokens, plus at least " + std::to_string(kMinHaystack) +
                " of haystack); this model's max_positions is " +
                std::to_string(model.config().max_positions));
  }
  const int64_t hay = std::min(o.retrieval_length, room);
  // Filler sentence by sentence, cut at exactly `hay` tokens; the needle goes in at the sentence
  // boundary closest to half depth.
  std::vector<int32_t> filler;
  std::vector<int64_t> bounds{0};
  for (size_t s = 0; static_cast<int64_t>(filler.size()) < hay; ++s) {
    const std::vector<int32_t> ids = enc(kFiller[s % std::size(kFiller)]);
    // A tokenizer that turns a filler sentence into nothing would loop here forever.
    if (ids.empty()) {
      throw Error("the retrieval probe's filler text has no tokens in this model's tokenizer");
    }
    filler.insert(filler.end(), ids.begin(), ids.end());
    bounds.push_back(std::min<int64_t>(static_cast<int64_t>(filler.size()), hay));
  }
  filler.resize(static_cast<size_t>(hay));
  const int64_t at = *std::min_element(bounds.begin(), bounds.end(), [&](int64_t a, int64_t b) {
    return std::llabs(2 * a - hay) < std::llabs(2 * b - hay);
  });
  const auto append = [&](const std::vector<int32_t>& ids) {
    seq.ids.insert(seq.ids.end(), ids.begin(), ids.end());
  };
  append(prefix);
  seq.ids.insert(seq.ids.end(), filler.begin(), filler.begin() + at);
  append(needle_head);
  seq.value_begin = static_cast<int64_t>(seq.ids.size());
  append(value);
  seq.value_end = static_cast<int64_t>(seq.ids.size());
  append(needle_tail);
  seq.ids.insert(seq.ids.end(), filler.begin() + at, filler.end());
  append(question);
  for (size_t m = 0; m < value.size(); ++m)
    seq.answer_positions.push_back(static_cast<int64_t>(seq.ids.size() + m));
  append(value);
  seq.haystack_tokens = hay;
  seq.note = "needle \"The special magic number is " + seq.value + ".\" at token " +
             std::to_string(seq.value_begin) + " of " + std::to_string(seq.ids.size()) + ", " +
             std::to_string(hay) + " haystack tokens" +
             (hay < o.retrieval_length ? " (capped by max_positions)" : "");
  return seq;
}

std::vector<double> layer_retrieval_scores(const LayerAttention& la, const RetrievalSequence& seq,
                                           const CancelToken& cancel) {
  const int64_t L = static_cast<int64_t>(seq.ids.size());
  if (la.problem.shape.q_len != L || seq.answer_positions.empty()) {
    throw Error("the layer ran " + std::to_string(la.problem.shape.q_len) +
                " tokens; the retrieval sequence has " + std::to_string(L));
  }
  for (int64_t s : seq.answer_positions) {
    if (s < 1 || s >= L) throw Error("an answer position lies outside the retrieval sequence");
  }
  return per_head(la, cancel, [&](const HeadView& v, RowScratch& s) {
    int64_t hits = 0;
    for (int64_t pos : seq.answer_positions) {
      double z = 0;
      const int64_t hi = row_exp(v, pos - 1, s, z);
      int64_t best = -1;
      for (int64_t j = 0; j < hi; ++j) {  // strictly greater: a tie keeps the smallest j
        if (s.e[static_cast<size_t>(j)] > 0 &&
            (best < 0 || s.e[static_cast<size_t>(j)] > s.e[static_cast<size_t>(best)]))
          best = j;
      }
      if (best >= seq.value_begin && best < seq.value_end &&
          seq.ids[static_cast<size_t>(best)] == seq.ids[static_cast<size_t>(pos)])
        ++hits;
    }
    return double(hits) / double(seq.answer_positions.size());
  });
}

HeadStatTable retrieval_scores(const Model& model, const HeadStatsOptions& o) {
  const RetrievalSequence seq = retrieval_sequence(model, o);
  HeadStatTable t = probe(model, seq.ids, HeadStat::retrieval, o, [&](const LayerAttention& la) {
    return layer_retrieval_scores(la, seq, o.cancel);
  });
  t.note = seq.note;
  return t;
}

}  // namespace attnscope
