// Head statistics, the "head atlas": one number per (layer, head) that says what kind of head it is
// (attention sinks, previous-token heads, induction heads, retrieval heads; docs/models.md).
// Every probability is recomputed in float64 from a layer's own q, k, mask and scale, never from
// fp32 maps, and never as an L x L buffer: a 32K-token text costs time, not memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/cancel.hpp"
#include "attnscope/model.hpp"

namespace attnscope {

enum class HeadStat { entropy, sink, local, distant, previous_token, induction, retrieval };

const std::vector<HeadStat>& all_head_stats();  // in the enum's order
// "entropy", "sink", "local", "distant", "previous_token", "induction", "retrieval".
std::string_view head_stat_key(HeadStat s);
std::optional<HeadStat> head_stat_from_key(std::string_view key);
// A title for a plot or a column, with the default options' numbers ("sink mass (first 4
// tokens)"); the two-argument form states the given options' numbers instead.
std::string_view head_stat_title(HeadStat s);
struct HeadStatsOptions;
std::string head_stat_title(HeadStat s, const HeadStatsOptions& o);
// Induction and retrieval are measured on their own synthetic sequence (their own forward), not
// on the user's text.
bool head_stat_needs_probe_text(HeadStat s);

struct HeadStatsOptions {
  int64_t sink_tokens = 4;    // sink: keys j < sink_tokens
  int64_t local_tokens = 16;  // local: keys i - local_tokens < j <= i
  // Induction: n random tokens, repeated once: 2n (+ BOS) tokens, n capped so that the sequence
  // fits max_positions.
  int64_t induction_length = 256;
  uint64_t seed = 1;  // the random tokens of the induction sequence and the retrieval needle
  // Retrieval: tokens of haystack text, capped so that the whole sequence fits max_positions.
  int64_t retrieval_length = 1024;
  std::string backend = "cpu";  // the backend of the probe forwards
  CancelToken cancel;           // progress 0..1 reported through it; Cancelled thrown
};

// [layers x heads], row-major: value(layer, head) = values[layer * heads + head].
struct HeadStatTable {
  HeadStat stat = HeadStat::entropy;
  int64_t layers = 0, heads = 0;
  std::vector<double> values;
  int64_t tokens = 0;  // length of the sequence the statistic was measured on
  std::string note;    // how it was measured: the key ranges, the random sequence, the needle
  double at(int64_t layer, int64_t head) const;
};

// Text statistics (entropy, sink, local, distant, previous_token, in that order) of every layer
// and head of a forward run with ForwardOptions::capture = true. Exact: p_ij recomputed in float64
// from the captured q, k under the layer's own mask (causal, Mistral's window) and scale, one query
// row at a time. Throws Error when `captured.layers` is empty (no capture) or the options are out
// of range, Cancelled through o.cancel.
std::vector<HeadStatTable> text_head_stats(const ForwardResult& captured,
                                           const HeadStatsOptions& o);
// One layer's text statistics (what text_head_stats does per layer; a caller may go layer by
// layer): five tables with layers = 1.
std::vector<HeadStatTable> layer_text_stats(const LayerAttention& la, const HeadStatsOptions& o);

// The induction probe's sequence: [BOS if the tokenizer adds one] + r + r, r = n random ids.
struct InductionSequence {
  std::vector<int32_t> ids;
  int64_t n = 0;       // length of r
  int64_t offset = 0;  // 1 when a BOS leads, else 0: r's first copy starts at `offset`
  std::string note;
};
// r = n ids drawn uniformly (with replacement, std::mt19937_64 seeded with o.seed, by rejection so
// every platform draws the same ids) from the eligible ids: with a tokenizer, the ids in
// [0, min(vocab_size, tokenizer vocab)) that are vocabulary tokens and not tokenizer.json's
// added_tokens (BOS, EOS, chat markers); without one, every id in [0, vocab_size).
// n = min(o.induction_length, (max_positions - offset) / 2). Throws Error when n < 2.
InductionSequence induction_sequence(const Model& model, const HeadStatsOptions& o);
// Per head [H], on one layer's attention over that sequence: the mean over the second copy's
// queries i = offset + n + t, t = 1..n-1, of p_{i, i-n+1}, the key right after the earlier
// occurrence of the current token (Olsson et al. 2022, "In-context Learning and Induction Heads").
std::vector<double> layer_induction_scores(const LayerAttention& la, const InductionSequence& seq,
                                           const CancelToken& cancel = {});
// Runs the model on induction_sequence(model, o), one layer at a time (ForwardOptions::observe).
HeadStatTable induction_scores(const Model& model, const HeadStatsOptions& o);

// The retrieval probe's sequence (Wu et al. 2024, "Retrieval Head Mechanistically Explains
// Long-Context Factuality"): [BOS] + filler sentences with a needle sentence at half depth
// ("The special magic number is <value>.") + a question + the value again as the answer. Built
// from separately encoded pieces, so the value's ids and positions are known exactly.
struct RetrievalSequence {
  std::vector<int32_t> ids;
  int64_t value_begin = 0, value_end = 0;  // positions [begin, end) of the needle's value
  std::vector<int64_t> answer_positions;   // s_m: where the answer's tokens are, in order
  int64_t haystack_tokens = 0;             // filler tokens around the needle
  std::string value;                       // the needle's value, e.g. "4817265"
  std::string note;
};
// The haystack is min(o.retrieval_length, what fits max_positions beside the other pieces)
// tokens. Throws Error naming tokenizer.json when the model has none, and when max_positions
// cannot hold the needle, question and answer with at least 16 filler tokens.
RetrievalSequence retrieval_sequence(const Model& model, const HeadStatsOptions& o);
// Per head [H]: the share of answer tokens a_m whose predicting query (position s_m - 1) has its
// argmax key (the smallest j on a tie) inside the needle's value and holding a_m.
std::vector<double> layer_retrieval_scores(const LayerAttention& la, const RetrievalSequence& seq,
                                           const CancelToken& cancel = {});
// Runs the model on retrieval_sequence(model, o), teacher-forced, one layer at a time.
HeadStatTable retrieval_scores(const Model& model, const HeadStatsOptions& o);

}  // namespace attnscope
