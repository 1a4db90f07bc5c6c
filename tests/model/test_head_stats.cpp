// Head statistics on tiny random models and on hand-built attention: every statistic equals the
// one read off a full float64 attention map built here from the captured q, k (the library never
// builds one), constructed heads score what they were built to score, and bad input is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "attnscope/error.hpp"
#include "attnscope/head_stats.hpp"
#include "attnscope/model.hpp"
#include "fixture.hpp"

using namespace attnscope;
using attnscope::test::random_ids;
using attnscope::test::test_dir;
using attnscope::test::TinyModelSpec;
using attnscope::test::write_byte_level_tokenizer;
using attnscope::test::write_tiny_model;

namespace {

Model tiny(TinyModelSpec spec = {}, bool tokenizer = false, const std::string& tag = "") {
  const std::string dir = write_tiny_model(spec, test_dir(spec.model_type + tag)).dir;
  if (tokenizer) write_byte_level_tokenizer(dir, spec.vocab);
  return Model::load(dir);
}

// The full [L, L] map of head h: causal, keys j > i - window or j < sinks when window > 0, scale
// Dh^-1/2.
std::vector<double> full_map(const LayerAttention& a, int64_t h, int64_t window,
                             int64_t sinks = 0) {
  const Tensor& q = a.inputs.at("q");
  const Tensor& k = a.inputs.at("k");
  const int64_t H = q.dim(1), L = q.dim(2), D = q.dim(3), group = H / k.dim(1);
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> p(static_cast<size_t>(L * L), 0.0);
  for (int64_t i = 0; i < L; ++i) {
    const auto sees = [&](int64_t j) {
      return j <= i && (window <= 0 || j > i - window || j < sinks);
    };
    double m = -INFINITY, z = 0;
    std::vector<double> s(static_cast<size_t>(L), 0.0);
    for (int64_t j = 0; j < L; ++j) {
      if (!sees(j)) continue;
      double dot = 0;
      for (int64_t d = 0; d < D; ++d)
        dot += double(q.at({0, h, i, d})) * double(k.at({0, h / group, j, d}));
      s[size_t(j)] = dot * scale;
      m = std::max(m, s[size_t(j)]);
    }
    for (int64_t j = 0; j < L; ++j)
      if (sees(j)) z += std::exp(s[size_t(j)] - m);
    for (int64_t j = 0; j < L; ++j)
      if (sees(j)) p[size_t(i * L + j)] = std::exp(s[size_t(j)] - m) / z;
  }
  return p;
}

// The five text statistics of one head, read off its full map by their definitions.
std::vector<double> map_stats(const std::vector<double>& p, int64_t L, int64_t sinks,
                              int64_t local) {
  double entropy = 0, sink = 0, loc = 0, distant = 0, previous = 0;
  for (int64_t i = 0; i < L; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      const double x = p[size_t(i * L + j)];
      if (x > 0) entropy -= x * std::log(x);
      if (j < sinks) sink += x;
      if (j > i - local) loc += x;
      if (j >= sinks && j <= i - local) distant += x;
    }
    if (i >= 1) previous += p[size_t(i * L + i - 1)];
  }
  const double n = double(L);
  return {entropy / n, sink / n, loc / n, distant / n, L >= 2 ? previous / (n - 1) : NAN};
}

void expect_close(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-9 * std::abs(want) + 1e-13) << what;
}

// Text statistics of every layer and head against the full maps of a captured forward.
void check_text_stats(const Model& model, int64_t tokens, int64_t window, HeadStatsOptions o) {
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult r = model.forward(random_ids(tokens, model.config().vocab_size, 11), fo);
  const std::vector<HeadStatTable> got = text_head_stats(r, o);
  ASSERT_EQ(got.size(), 5u);
  const int64_t layers = model.config().layers, H = model.config().heads;
  for (size_t s = 0; s < got.size(); ++s) {
    EXPECT_EQ(got[s].stat, all_head_stats()[s]);
    EXPECT_EQ(got[s].layers, layers);
    EXPECT_EQ(got[s].heads, H);
    EXPECT_EQ(got[s].tokens, tokens);
    ASSERT_EQ(got[s].values.size(), size_t(layers * H));
  }
  for (int64_t l = 0; l < layers; ++l) {
    const std::vector<HeadStatTable> one = layer_text_stats(r.layers[size_t(l)], o);
    for (int64_t h = 0; h < H; ++h) {
      const std::vector<double> want = map_stats(full_map(r.layers[size_t(l)], h, window), tokens,
                                                 o.sink_tokens, o.local_tokens);
      for (size_t s = 0; s < want.size(); ++s) {
        const std::string what = std::string(head_stat_key(got[s].stat)) + " layer " +
                                 std::to_string(l) + " head " + std::to_string(h);
        expect_close(got[s].at(l, h), want[s], what);
        EXPECT_EQ(one[s].values[size_t(h)], got[s].at(l, h)) << what;
      }
    }
  }
}

// A hand-built layer: q, k [1, H(kv), L, D] filled by the callbacks, causal, window > 0 for SWA
// (with `sinks`).
LayerAttention built_layer(int64_t H, int64_t Hkv, int64_t L, int64_t D, int64_t window,
                           const std::function<float(int64_t, int64_t, int64_t)>& q,
                           const std::function<float(int64_t, int64_t, int64_t)>& k,
                           int64_t sinks = 0) {
  LayerAttention a;
  a.problem = AttentionProblem::defaults(window > 0 ? VariantId::swa : VariantId::dense);
  a.problem.shape = {1, H, Hkv, L, L, D, D};
  a.problem.causal = true;
  a.problem.swa.window = window;
  a.problem.swa.sinks = sinks;
  Tensor tq({1, H, L, D}), tk({1, Hkv, L, D});
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t d = 0; d < D; ++d) tq.at({0, h, i, d}) = q(h, i, d);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t j = 0; j < L; ++j)
      for (int64_t d = 0; d < D; ++d) tk.at({0, h, j, d}) = k(h, j, d);
  a.inputs.set("q", std::move(tq));
  a.inputs.set("k", std::move(tk));
  return a;
}

TEST(HeadStats, NamesKeysAndTitles) {
  const std::vector<std::string_view> keys = {"entropy",        "sink",      "local",    "distant",
                                              "previous_token", "induction", "retrieval"};
  ASSERT_EQ(all_head_stats().size(), keys.size());
  for (size_t s = 0; s < keys.size(); ++s) {
    const HeadStat stat = all_head_stats()[s];
    EXPECT_EQ(static_cast<size_t>(stat), s);
    EXPECT_EQ(head_stat_key(stat), keys[s]);
    EXPECT_EQ(head_stat_from_key(keys[s]), stat);
    EXPECT_FALSE(head_stat_title(stat).empty());
    EXPECT_EQ(head_stat_needs_probe_text(stat),
              stat == HeadStat::induction || stat == HeadStat::retrieval);
  }
  EXPECT_FALSE(head_stat_from_key("Entropy"));
  EXPECT_FALSE(head_stat_from_key(""));
  EXPECT_EQ(head_stat_title(HeadStat::entropy), "attention entropy (nats)");
  EXPECT_EQ(head_stat_title(HeadStat::sink), "sink mass (first 4 tokens)");
  HeadStatsOptions o;
  o.sink_tokens = 2;
  EXPECT_EQ(head_stat_title(HeadStat::sink, o), "sink mass (first 2 tokens)");
}

TEST(HeadStats, TextStatsMatchFullMapLlamaGqa) {
  TinyModelSpec spec;  // 4 heads over 2 kv heads
  check_text_stats(tiny(spec), 45, 0, {});
  HeadStatsOptions o;  // overlapping sink and local sets, and a local set of one key
  o.sink_tokens = 7;
  o.local_tokens = 1;
  check_text_stats(tiny(spec, false, "b"), 30, 0, o);
}

TEST(HeadStats, TextStatsMatchFullMapMistralWindow) {
  TinyModelSpec spec;
  spec.model_type = "mistral";
  spec.sliding_window = 12;
  const Model model = tiny(spec);
  ASSERT_EQ(model.attention_problem(40).variant, VariantId::swa);
  HeadStatsOptions o;
  o.sink_tokens = 3;
  o.local_tokens = 5;
  check_text_stats(model, 40, 12, o);
}

TEST(HeadStats, TextStatsMatchFullMapGpt2) {
  TinyModelSpec spec;
  spec.model_type = "gpt2";
  check_text_stats(tiny(spec), 37, 0, {});
}

// A window with sinks (a what-if replacement's mask; no checkpoint has one): query tiles whose
// keys split into the sinks and the window, against the full map.
TEST(HeadStats, TextStatsMatchFullMapWindowWithSinks) {
  const int64_t L = 70, window = 9, sinks = 3;
  const LayerAttention a = built_layer(
      3, 1, L, 12, window,
      [](int64_t h, int64_t i, int64_t d) { return float(std::cos(double(h * 31 + i * 5 + d))); },
      [](int64_t, int64_t j, int64_t d) { return float(std::sin(double(j * 7 + d * 3))); }, sinks);
  HeadStatsOptions o;
  o.sink_tokens = 5;  // two more than the mask's sinks: keys 3, 4 leave the window too
  o.local_tokens = 4;
  const std::vector<HeadStatTable> t = layer_text_stats(a, o);
  for (int64_t h = 0; h < 3; ++h) {
    const std::vector<double> want =
        map_stats(full_map(a, h, window, sinks), L, o.sink_tokens, o.local_tokens);
    for (size_t s = 0; s < want.size(); ++s) expect_close(t[s].at(0, h), want[s], t[s].note);
  }
}

// q = 0 makes every score equal: p is uniform over the keys a query sees, so each statistic has a
// closed form. Under a window of 8 the row sees min(i + 1, 8) keys.
TEST(HeadStats, UniformAttentionHasKnownStatistics) {
  const int64_t L = 40;
  for (int64_t window : {0, 8}) {
    SCOPED_TRACE("window " + std::to_string(window));
    const LayerAttention a = built_layer(
        2, 1, L, 4, window, [](int64_t, int64_t, int64_t) { return 0.0f; },
        [](int64_t, int64_t j, int64_t d) { return float(std::sin(double(j * 7 + d))); });
    double entropy = 0, sink = 0, local = 0, distant = 0, previous = 0;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t lo = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
      const double n = double(i + 1 - lo);              // keys [lo, i]
      const auto count = [&](int64_t a0, int64_t a1) {  // visible keys in [a0, a1]
        return double(std::max<int64_t>(0, std::min(a1, i) - std::max(a0, lo) + 1));
      };
      entropy += std::log(n);
      sink += count(0, 3) / n;
      local += count(i - 15, i) / n;
      distant += count(4, i - 16) / n;
      if (i >= 1) previous += 1.0 / n;
    }
    const std::vector<HeadStatTable> t = layer_text_stats(a, {});
    const std::vector<double> want = {entropy / L, sink / L, local / L, distant / L,
                                      previous / (L - 1)};
    for (size_t s = 0; s < 5; ++s) {
      for (int64_t h = 0; h < 2; ++h) expect_close(t[s].at(0, h), want[s], t[s].note);
    }
    // Without a window the distant set is not empty at this length; a window of 8 hides every
    // key beyond the 16 local ones.
    if (window == 0) {
      EXPECT_GT(want[3], 0.0);
    } else {
      EXPECT_EQ(want[3], 0.0);
    }
  }
}

TEST(HeadStats, InductionMatchesFullMap) {
  TinyModelSpec spec;
  spec.vocab = 320;  // the test tokenizer's 275 ids fit, with unused ids above them
  const Model model = tiny(spec, /*tokenizer=*/true);
  HeadStatsOptions o;
  o.induction_length = 24;
  o.seed = 5;
  const InductionSequence seq = induction_sequence(model, o);
  ASSERT_EQ(seq.offset, 1);  // the tokenizer adds <|bos|>
  ASSERT_EQ(seq.n, 24);
  ASSERT_EQ(seq.ids.size(), size_t(1 + 2 * 24));
  const int32_t bos = *model.tokenizer().token_to_id("<|bos|>");
  EXPECT_EQ(seq.ids[0], bos);
  for (int64_t t = 0; t < seq.n; ++t) {
    EXPECT_EQ(seq.ids[size_t(1 + t)], seq.ids[size_t(1 + seq.n + t)]);
    EXPECT_NE(seq.ids[size_t(1 + t)], bos);  // added tokens are not drawn
    EXPECT_LT(seq.ids[size_t(1 + t)], model.tokenizer().vocab_size());
  }
  EXPECT_EQ(induction_sequence(model, o).ids, seq.ids);  // the seed decides
  o.seed = 6;
  EXPECT_NE(induction_sequence(model, o).ids, seq.ids);
  o.seed = 5;

  const HeadStatTable t = induction_scores(model, o);
  EXPECT_EQ(t.stat, HeadStat::induction);
  EXPECT_EQ(t.tokens, int64_t(seq.ids.size()));
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult r = model.forward(seq.ids, fo);
  const int64_t L = int64_t(seq.ids.size());
  for (int64_t l = 0; l < model.config().layers; ++l) {
    for (int64_t h = 0; h < model.config().heads; ++h) {
      const std::vector<double> p = full_map(r.layers[size_t(l)], h, 0);
      double sum = 0;
      for (int64_t i = 1 + seq.n + 1; i < L; ++i) sum += p[size_t(i * L + i - seq.n + 1)];
      expect_close(t.at(l, h), sum / double(seq.n - 1), "layer " + std::to_string(l));
    }
  }
}

TEST(HeadStats, InductionWithoutTokenizerDrawsFromTheWholeVocabulary) {
  const Model model = tiny();
  HeadStatsOptions o;
  o.induction_length = 300;  // capped: 2n <= max_positions 128
  const InductionSequence seq = induction_sequence(model, o);
  EXPECT_EQ(seq.offset, 0);
  EXPECT_EQ(seq.n, 64);
  EXPECT_EQ(seq.ids.size(), 128u);
  for (int32_t id : seq.ids) EXPECT_LT(id, 97);
}

// A head built to copy: its query in the second copy points at key i - n + 1 only.
TEST(HeadStats, ConstructedInductionHeadScoresOne) {
  InductionSequence seq;
  seq.n = 10;
  seq.offset = 1;
  for (int64_t i = 0; i < 1 + 2 * seq.n; ++i) seq.ids.push_back(int32_t(i % 11));
  const int64_t L = int64_t(seq.ids.size()), D = L;
  const double big = 40 * std::sqrt(double(D));  // score 40 against 0 for every other key
  const LayerAttention a = built_layer(
      2, 2, L, D, 0,
      [&](int64_t h, int64_t i, int64_t d) {
        return h == 0 && i > seq.n && d == i - seq.n + 1 ? float(big) : 0.0f;
      },
      [](int64_t, int64_t j, int64_t d) { return j == d ? 1.0f : 0.0f; });
  const std::vector<double> s = layer_induction_scores(a, seq);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_NEAR(s[0], 1.0, 1e-12);
  double uniform = 0;  // head 1 has q = 0: p = 1 / (i + 1)
  for (int64_t i = 1 + seq.n + 1; i < L; ++i) uniform += 1.0 / double(i + 1);
  expect_close(s[1], uniform / double(seq.n - 1), "uniform head");
}

TEST(HeadStats, RetrievalMatchesFullMap) {
  TinyModelSpec spec;
  spec.vocab = 320;
  spec.max_positions = 256;
  const Model model = tiny(spec, /*tokenizer=*/true);
  HeadStatsOptions o;
  o.retrieval_length = 60;
  const RetrievalSequence seq = retrieval_sequence(model, o);
  EXPECT_EQ(seq.value.size(), 7u);
  EXPECT_EQ(seq.haystack_tokens, 60);
  EXPECT_EQ(model.tokenizer().decode(std::vector<int32_t>(seq.ids.begin() + seq.value_begin,
                                                          seq.ids.begin() + seq.value_end)),
            " " + seq.value);
  const int64_t M = seq.value_end - seq.value_begin;
  ASSERT_EQ(int64_t(seq.answer_positions.size()), M);
  for (int64_t m = 0; m < M; ++m) {
    EXPECT_EQ(seq.answer_positions[size_t(m)], int64_t(seq.ids.size()) - M + m);
    EXPECT_EQ(seq.ids[size_t(seq.answer_positions[size_t(m)])],
              seq.ids[size_t(seq.value_begin + m)]);
  }
  // The needle sits near half depth of the haystack.
  EXPECT_GT(seq.value_begin, 20);
  EXPECT_LT(seq.value_begin, 70);

  const HeadStatTable t = retrieval_scores(model, o);
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult r = model.forward(seq.ids, fo);
  const int64_t L = int64_t(seq.ids.size());
  for (int64_t l = 0; l < model.config().layers; ++l) {
    for (int64_t h = 0; h < model.config().heads; ++h) {
      const std::vector<double> p = full_map(r.layers[size_t(l)], h, 0);
      int64_t hits = 0;
      for (int64_t s : seq.answer_positions) {
        const int64_t i = s - 1;
        int64_t best = 0;
        for (int64_t j = 1; j <= i; ++j)
          if (p[size_t(i * L + j)] > p[size_t(i * L + best)]) best = j;
        if (best >= seq.value_begin && best < seq.value_end &&
            seq.ids[size_t(best)] == seq.ids[size_t(s)])
          ++hits;
      }
      EXPECT_EQ(t.at(l, h), double(hits) / double(M)) << "layer " << l << " head " << h;
    }
  }
}

// Heads built to look at chosen keys from each answer-predicting query: the needle's matching
// token (hit), a needle token holding another id (miss), and a tie between a key before the needle
// and the right one (the smallest j wins: miss) or after it (hit).
TEST(HeadStats, ConstructedRetrievalHeads) {
  RetrievalSequence seq;
  seq.ids = {9, 1, 1, 5, 6, 7, 1, 1, 1, 5, 6, 7};
  seq.value_begin = 3;
  seq.value_end = 6;
  seq.answer_positions = {9, 10, 11};
  const int64_t L = int64_t(seq.ids.size()), D = L;
  const double big = 30 * std::sqrt(double(D));
  // keys[h](m): the keys head h's query for answer m points at (equal scores among them).
  const std::vector<std::function<std::vector<int64_t>(int64_t)>> keys = {
      [](int64_t m) { return std::vector<int64_t>{3 + m}; },
      [](int64_t m) { return std::vector<int64_t>{m == 0 ? 4 : 3 + m}; },
      [](int64_t m) {
        return std::vector<int64_t>{1, 3 + m};
      },
      [](int64_t m) {
        return std::vector<int64_t>{3 + m, 7};
      },
  };
  const LayerAttention a = built_layer(
      4, 4, L, D, 0,
      [&](int64_t h, int64_t i, int64_t d) {
        if (i < 8) return 0.0f;
        const auto k = keys[size_t(h)](i - 8);
        return std::find(k.begin(), k.end(), d) != k.end() ? float(big) : 0.0f;
      },
      [](int64_t, int64_t j, int64_t d) { return j == d ? 1.0f : 0.0f; });
  const std::vector<double> s = layer_retrieval_scores(a, seq);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], 1.0);
  EXPECT_EQ(s[1], 2.0 / 3.0);
  EXPECT_EQ(s[2], 0.0);
  EXPECT_EQ(s[3], 1.0);
}

TEST(HeadStats, CancelledTokenThrowsCancelled) {
  TinyModelSpec spec;
  spec.vocab = 320;
  const Model model = tiny(spec, true);
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult r = model.forward(random_ids(30, 97, 2), fo);
  HeadStatsOptions o;
  o.induction_length = 16;
  o.retrieval_length = 20;
  o.cancel.cancel();
  EXPECT_THROW(text_head_stats(r, o), Cancelled);
  EXPECT_THROW(layer_text_stats(r.layers[0], o), Cancelled);
  EXPECT_THROW(induction_scores(model, o), Cancelled);
  EXPECT_THROW(retrieval_scores(model, o), Cancelled);

  // A cancel arriving mid-run (from the first progress report) stops it too.
  const std::vector<std::function<void(const HeadStatsOptions&)>> runs = {
      [&](const HeadStatsOptions& x) { text_head_stats(r, x); },
      [&](const HeadStatsOptions& x) { induction_scores(model, x); },
      [&](const HeadStatsOptions& x) { retrieval_scores(model, x); },
  };
  for (size_t run = 0; run < runs.size(); ++run) {
    HeadStatsOptions mid;
    mid.induction_length = 16;
    mid.retrieval_length = 20;
    const CancelToken token = mid.cancel;
    mid.cancel.set_progress_callback([token](double) { token.cancel(); });
    EXPECT_THROW(runs[run](mid), Cancelled) << "run " << run;
  }

  // Progress rises to 1 on a run that is not cancelled.
  HeadStatsOptions p;
  std::vector<double> seen;
  p.cancel.set_progress_callback([&](double f) { seen.push_back(f); });
  text_head_stats(r, p);
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), 1.0);
}

TEST(HeadStats, RefusesWhatItCannotMeasure) {
  const Model model = tiny();
  // No capture.
  try {
    text_head_stats(model.forward(random_ids(10, 97, 1)), {});
    ADD_FAILURE() << "accepted a forward without capture";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capture"), std::string::npos) << e.what();
  }
  // Retrieval writes text: it needs the tokenizer.
  try {
    retrieval_scores(model, {});
    ADD_FAILURE() << "retrieval ran without a tokenizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  HeadStatsOptions bad;
  bad.sink_tokens = -1;
  ForwardOptions fo;
  fo.capture = true;
  EXPECT_THROW(text_head_stats(model.forward(random_ids(10, 97, 1), fo), bad), Error);
  bad = {};
  bad.induction_length = 1;
  EXPECT_THROW(induction_sequence(model, bad), Error);
}

// GPT-2 refuses more tokens than n_positions: the induction probe shrinks to fit, the retrieval
// probe (whose needle and question alone are longer) says how many positions it needs.
TEST(HeadStats, ShortMaxPositionsCapsOrRefuses) {
  TinyModelSpec spec;
  spec.model_type = "gpt2";
  spec.vocab = 320;
  spec.max_positions = 16;
  const Model model = tiny(spec, true);
  const InductionSequence seq = induction_sequence(model, {});
  EXPECT_LE(int64_t(seq.ids.size()), 16);
  EXPECT_EQ(seq.n, (16 - seq.offset) / 2);
  const HeadStatTable t = induction_scores(model, {});
  EXPECT_EQ(t.tokens, int64_t(seq.ids.size()));
  for (double v : t.values) EXPECT_TRUE(v >= 0 && v <= 1) << v;
  try {
    retrieval_scores(model, {});
    ADD_FAILURE() << "retrieval ran past n_positions";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_positions is 16"), std::string::npos) << e.what();
  }
  // With room for some haystack the probe runs, its haystack cut so the sequence fills the limit.
  spec.max_positions = 128;
  const Model roomy = tiny(spec, true, "roomy");
  HeadStatsOptions o;
  o.retrieval_length = 4096;
  const RetrievalSequence r = retrieval_sequence(roomy, o);
  EXPECT_EQ(int64_t(r.ids.size()), 128);
  EXPECT_LT(r.haystack_tokens, 4096);
  EXPECT_EQ(retrieval_scores(roomy, o).tokens, 128);
}

}  // namespace
