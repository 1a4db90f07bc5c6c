// The head atlas's names and its text statistics (head_stats.hpp): entropy, sink, local, distant
// and previous-token mass of every head, from each layer's captured q, k in float64, query row by
// query row, so a long text costs O(L^2 Dh) time per head and O(L) memory per thread.
#include "attnscope/head_stats.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "analysis/row_softmax.hpp"
#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/parallel.hpp"

namespace attnscope {

using namespace analysis_detail;  // NOLINT: this file is the statistics' own implementation

namespace {

struct StatName {
  HeadStat stat;
  std::string_view key, title;
  bool probe;
};

// The one table of the statistics: keys, titles and which need their own probe sequence.
constexpr std::array<StatName, 7> kStats{{
    {HeadStat::entropy, "entropy", "attention entropy (nats)", false},
    {HeadStat::sink, "sink", "sink mass (first 4 tokens)", false},
    {HeadStat::local, "local", "local mass (last 16 tokens)", false},
    {HeadStat::distant, "distant", "distant mass (neither sink nor local)", false},
    {HeadStat::previous_token, "previous_token", "previous-token attention", false},
    {HeadStat::induction, "induction", "induction score (repeated random tokens)", true},
    {HeadStat::retrieval, "retrieval", "retrieval score (needle copied by argmax)", true},
}};

const StatName& name_of(HeadStat s) {
  return kStats[static_cast<size_t>(s)];
}

// The text statistics in the order layer_text_stats returns them.
constexpr std::array<HeadStat, 5> kTextStats{HeadStat::entropy, HeadStat::sink, HeadStat::local,
                                             HeadStat::distant, HeadStat::previous_token};

void check_options(const HeadStatsOptions& o) {
  if (o.sink_tokens < 0 || o.local_tokens < 0) {
    throw Error("head statistics: sink_tokens (" + std::to_string(o.sink_tokens) +
                ") and local_tokens (" + std::to_string(o.local_tokens) + ") must be >= 0");
  }
}

// Query rows per task: enough work per task to hide the pool's hand-out, small enough that
// progress and cancellation are heard within a fraction of a second at 32K tokens.
constexpr int64_t kRowTile = 32;

// Sums over one head's query rows [i0, i1) of the five per-row quantities.
struct RowSums {
  double entropy = 0, sink = 0, local = 0, distant = 0, previous = 0;
};

RowSums row_tile_sums(const HeadView& v, int64_t i0, int64_t i1, const HeadStatsOptions& o,
                      RowScratch& s) {
  RowSums sums;
  int64_t his[kTileRows];
  double zs[kTileRows];
  for (int64_t r0 = i0; r0 < i1; r0 += kTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTileRows, i1 - r0));
    tile_exp(v, r0, rows, s, his, zs);
    for (int r = 0; r < rows; ++r) {
      const int64_t i = r0 + r, hi = his[r];
      const double z = zs[r];
      if (hi <= 0 || z <= 0) continue;  // a row that sees nothing has no distribution
      const double* e = s.e.data() + r * v.L;
      const double* t = s.t.data() + r * v.L;
      // -sum p ln p with p = e / z and ln p = t - ln z; masked keys have e = 0 and add nothing.
      double et = 0;
      for (int64_t j = 0; j < hi; ++j) {
        if (e[j] > 0) et += e[j] * t[j];
      }
      sums.entropy += std::log(z) - et / z;
      const int64_t sink_end = std::min(o.sink_tokens, hi);
      const int64_t local_begin = std::max<int64_t>(0, i - o.local_tokens + 1);
      double sink = 0, local = 0, distant = 0;
      for (int64_t j = 0; j < sink_end; ++j) sink += e[j];
      for (int64_t j = local_begin; j < hi; ++j) local += e[j];
      for (int64_t j = o.sink_tokens; j < local_begin; ++j) distant += e[j];
      sums.sink += sink / z;
      sums.local += local / z;
      sums.distant += distant / z;
      if (i >= 1) sums.previous += e[i - 1] / z;
    }
  }
  return sums;
}

// One layer's five tables (layers = 1); progress goes to o.cancel as base + span * fraction.
std::vector<HeadStatTable> layer_stats(const LayerAttention& la, const HeadStatsOptions& o,
                                       double base, double span) {
  check_layer(la);
  const int64_t H = la.problem.shape.heads, L = la.problem.shape.q_len;
  const int64_t tiles = (L + kRowTile - 1) / kRowTile, tasks = H * tiles;
  const int threads = stat_threads();
  std::vector<RowScratch> scratch(static_cast<size_t>(threads));
  std::vector<RowSums> partial(static_cast<size_t>(tasks));
  std::atomic<int64_t> done{0};
  o.cancel.throw_if_cancelled();
  ThreadPool::global().parallel_for(tasks, threads, [&](int64_t task, int worker) {
    o.cancel.throw_if_cancelled();
    const int64_t h = task / tiles, i0 = (task % tiles) * kRowTile;
    const HeadView v = head_view(la, h);
    RowScratch& s = scratch[static_cast<size_t>(worker)];
    s.size_for(v);
    partial[static_cast<size_t>(task)] = row_tile_sums(v, i0, std::min(L, i0 + kRowTile), o, s);
    const int64_t n = done.fetch_add(1, std::memory_order_relaxed) + 1;
    // The caller's thread reports: the callback need not be safe to call from several at once.
    if (worker == 0) o.cancel.report(base + span * double(n) / double(tasks));
  });
  // Once more from here: on a short layer the other threads may have taken every task.
  o.cancel.report(base + span);
  o.cancel.throw_if_cancelled();

  const KeyMask mask = KeyMask::of(la.problem);
  const std::string window =
      mask.window > 0 ? ", under the layer's sliding window of " + std::to_string(mask.window) : "";
  std::vector<HeadStatTable> out;
  for (HeadStat stat : kTextStats) {
    HeadStatTable t;
    t.stat = stat;
    t.layers = 1;
    t.heads = H;
    t.tokens = L;
    t.values.assign(static_cast<size_t>(H), 0.0);
    for (int64_t h = 0; h < H; ++h) {
      double sum = 0;
      for (int64_t tile = 0; tile < tiles; ++tile) {  // in order: thread-count independent
        const RowSums& r = partial[static_cast<size_t>(h * tiles + tile)];
        sum += stat == HeadStat::entropy   ? r.entropy
               : stat == HeadStat::sink    ? r.sink
               : stat == HeadStat::local   ? r.local
               : stat == HeadStat::distant ? r.distant
                                           : r.previous;
      }
      double& value = t.values[static_cast<size_t>(h)];
      if (stat == HeadStat::previous_token) {
        value = L >= 2 ? sum / double(L - 1) : std::nan("");
      } else {
        value = sum / double(L);
      }
    }
    const std::string S = std::to_string(o.sink_tokens), W = std::to_string(o.local_tokens);
    switch (stat) {
      case HeadStat::entropy:
        t.note = "mean over queries of -sum_j p ln p";
        break;
      case HeadStat::sink:
        t.note = "mass on keys j < " + S;
        break;
      case HeadStat::local:
        t.note = "mass on keys i-" + W + " < j <= i";
        break;
      case HeadStat::distant:
        t.note = "mass on keys " + S + " <= j <= i-" + W;
        break;
      default:
        t.note = "p(i, i-1), queries i >= 1";
        break;
    }
    t.note += ", " + std::to_string(L) + " tokens of the text" + window;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

const std::vector<HeadStat>& all_head_stats() {
  static const std::vector<HeadStat> all = [] {
    std::vector<HeadStat> v;
    for (const StatName& n : kStats) v.push_back(n.stat);
    return v;
  }();
  return all;
}

std::string_view head_stat_key(HeadStat s) {
  return name_of(s).key;
}

std::optional<HeadStat> head_stat_from_key(std::string_view key) {
  for (const StatName& n : kStats) {
    if (n.key == key) return n.stat;
  }
  return std::nullopt;
}

std::string_view head_stat_title(HeadStat s) {
  return name_of(s).title;
}

std::string head_stat_title(HeadStat s, const HeadStatsOptions& o) {
  switch (s) {
    case HeadStat::sink:
      return "sink mass (first " + std::to_string(o.sink_tokens) + " tokens)";
    case HeadStat::local:
      return "local mass (last " + std::to_string(o.local_tokens) + " tokens)";
    default:
      return std::string(name_of(s).title);
  }
}

bool head_stat_needs_probe_text(HeadStat s) {
  return name_of(s).probe;
}

double HeadStatTable::at(int64_t layer, int64_t head) const {
  if (layer < 0 || layer >= layers || head < 0 || head >= heads) {
    throw Error("head " + std::to_string(layer) + "." + std::to_string(head) +
                " is outside the table's " + std::to_string(layers) + " layers x " +
                std::to_string(heads) + " heads");
  }
  return values[static_cast<size_t>(layer * heads + head)];
}

std::vector<HeadStatTable> layer_text_stats(const LayerAttention& la, const HeadStatsOptions& o) {
  check_options(o);
  return layer_stats(la, o, 0.0, 1.0);
}

std::vector<HeadStatTable> text_head_stats(const ForwardResult& captured,
                                           const HeadStatsOptions& o) {
  check_options(o);
  if (captured.layers.empty()) {
    throw Error(
        "head statistics need every layer's q and k: run the forward with "
        "ForwardOptions::capture = true");
  }
  const int64_t layers = static_cast<int64_t>(captured.layers.size());
  std::vector<HeadStatTable> out;
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<HeadStatTable> one = layer_stats(captured.layers[static_cast<size_t>(l)], o,
                                                 double(l) / double(layers), 1.0 / double(layers));
    if (out.empty()) {
      out = std::move(one);
      for (HeadStatTable& t : out) t.values.reserve(static_cast<size_t>(layers * t.heads));
      continue;
    }
    for (size_t s = 0; s < out.size(); ++s) {
      if (one[s].heads != out[s].heads || one[s].tokens != out[s].tokens) {
        throw Error("layer " + std::to_string(l) + " has " + std::to_string(one[s].heads) +
                    " heads over " + std::to_string(one[s].tokens) + " tokens; layer 0 has " +
                    std::to_string(out[s].heads) + " over " + std::to_string(out[s].tokens));
      }
      out[s].values.insert(out[s].values.end(), one[s].values.begin(), one[s].values.end());
    }
  }
  for (HeadStatTable& t : out) t.layers = layers;
  o.cancel.report(1.0);
  return out;
}

}  // namespace attnscope
