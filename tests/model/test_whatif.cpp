// What-if on tiny random models: a variant that sees everything reproduces dense exactly; a real
// restriction's recall, output error and KL match direct float64 computations from the captured
// q, k, v and from two full-logit forwards; bad requests are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "attnscope/whatif.hpp"
#include "fixture.hpp"

using namespace attnscope;
using attnscope::test::random_ids;
using attnscope::test::test_dir;
using attnscope::test::TinyModelSpec;
using attnscope::test::write_tiny_model;

namespace {

Model tiny(TinyModelSpec spec = {}) {
  return Model::load(write_tiny_model(spec, test_dir(spec.model_type)).dir);
}

WhatIfRequest swa(int64_t window, int64_t sinks = 0) {
  WhatIfRequest r;
  r.variant = AttentionProblem::defaults(VariantId::swa);
  r.variant.swa.window = window;
  r.variant.swa.sinks = sinks;
  return r;
}

WhatIfRequest moba(int64_t block_size, int64_t top_k) {
  WhatIfRequest r;
  r.variant = AttentionProblem::defaults(VariantId::moba);
  r.variant.moba.block_size = block_size;
  r.variant.moba.top_k = top_k;
  return r;
}

// Per head: mean over queries of sum_{j: sees(i, j)} P(i, j), where P is the causal softmax of
// the captured q, k over the keys `own(i, j)` admits; in float64 from the tensors themselves.
std::vector<double> direct_recall(const LayerAttention& a,
                                  const std::function<bool(int64_t, int64_t)>& own,
                                  const std::function<bool(int64_t, int64_t)>& sees) {
  const Tensor& q = a.inputs.at("q");
  const Tensor& k = a.inputs.at("k");
  const int64_t H = q.dim(1), L = q.dim(2), D = q.dim(3), group = H / k.dim(1);
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> recall(static_cast<size_t>(H), 0.0);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<size_t>(L), -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        if (!own(i, j)) continue;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) {
          dot += double(q.at({0, h, i, d})) * double(k.at({0, h / group, j, d}));
        }
        s[size_t(j)] = dot * scale;
        m = std::max(m, s[size_t(j)]);
      }
      double total = 0, seen = 0;
      for (int64_t j = 0; j <= i; ++j) {
        if (!own(i, j)) continue;
        const double p = std::exp(s[size_t(j)] - m);
        total += p;
        if (sees(i, j)) seen += p;
      }
      recall[size_t(h)] += seen / total / double(L);
    }
  }
  return recall;
}

TEST(WhatIf, VariantsThatSeeEverythingReproduceDense) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(40, 97, 3);
  for (const WhatIfRequest& r : {swa(40), swa(64, 3), moba(8, 5), moba(16, 9)}) {
    const WhatIfReport rep = what_if(model, ids, r);
    SCOPED_TRACE(rep.variant);
    EXPECT_NEAR(rep.ppl, rep.ppl_dense, 1e-5 * rep.ppl_dense);
    EXPECT_LT(rep.kl_mean, 1e-9);
    ASSERT_EQ(rep.layers.size(), 2u);
    for (const WhatIfLayer& l : rep.layers) {
      for (double x : l.recall) EXPECT_NEAR(x, 1.0, 1e-5);
      for (double e : l.output_error) EXPECT_LT(e, 1e-5);
    }
  }
}

TEST(WhatIf, RecallAndErrorMatchDirectComputation) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(48, 97, 4);
  const int64_t window = 5, sinks = 2;
  WhatIfRequest r = swa(window, sinks);
  std::vector<LayerAttention> dense_layers;
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult dense = model.forward(ids, fo);
  const WhatIfReport rep = what_if(model, ids, r);
  ASSERT_EQ(rep.layers.size(), size_t(model.config().layers));
  const auto all = [](int64_t, int64_t) { return true; };
  const auto sees = [&](int64_t i, int64_t j) { return j < sinks || j > i - window; };
  for (size_t l = 0; l < rep.layers.size(); ++l) {
    const std::vector<double> want = direct_recall(dense.layers[l], all, sees);
    for (size_t h = 0; h < want.size(); ++h) {
      EXPECT_NEAR(rep.layers[l].recall[h], want[h], 2e-5) << "layer " << l << " head " << h;
      EXPECT_LT(want[h], 0.999) << "a window of 5 over 48 tokens must miss some mass";
      EXPECT_GT(rep.layers[l].output_error[h], 1e-4);
    }
  }
  EXPECT_GT(rep.kl_mean, 0.0);
  EXPECT_NE(rep.ppl, rep.ppl_dense);
  EXPECT_NEAR(rep.ppl_dense, dense.perplexity(), 1e-9 * dense.perplexity());
}

// Mistral's own attention is a window: recall is of that window's mass (the tiled path).
TEST(WhatIf, RecallIsOfTheLayersOwnAttention) {
  TinyModelSpec spec;
  spec.model_type = "mistral";
  spec.sliding_window = 12;
  const Model model = tiny(spec);
  const std::vector<int32_t> ids = random_ids(40, 97, 5);
  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult dense = model.forward(ids, fo);
  const auto own = [](int64_t i, int64_t j) { return j > i - 12; };
  // A narrower window: a subset of the model's own.
  WhatIfReport rep = what_if(model, ids, swa(5));
  for (size_t l = 0; l < rep.layers.size(); ++l) {
    const auto want =
        direct_recall(dense.layers[l], own, [](int64_t i, int64_t j) { return j > i - 5; });
    for (size_t h = 0; h < want.size(); ++h) EXPECT_NEAR(rep.layers[l].recall[h], want[h], 2e-5);
  }
  // Sinks outside the model's window add keys the model never saw: they carry none of its mass.
  rep = what_if(model, ids, swa(5, 4));
  for (size_t l = 0; l < rep.layers.size(); ++l) {
    const auto want = direct_recall(dense.layers[l], own,
                                    [](int64_t i, int64_t j) { return j < 4 || j > i - 5; });
    for (size_t h = 0; h < want.size(); ++h) EXPECT_NEAR(rep.layers[l].recall[h], want[h], 2e-5);
  }
}

TEST(WhatIf, KlAndPerplexityMatchTwoFullForwards) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(36, 97, 6);
  WhatIfRequest r = moba(8, 2);
  r.first_layer = 1;
  r.last_layer = 1;
  const WhatIfReport rep = what_if(model, ids, r);
  ASSERT_EQ(rep.layers.size(), 1u);
  EXPECT_EQ(rep.layers[0].layer, 1);

  ForwardOptions a, b;
  b.replace = [&](int64_t layer, const AttentionProblem& own) -> std::optional<AttentionProblem> {
    if (layer != 1) return std::nullopt;
    AttentionProblem p = r.variant;
    p.shape = own.shape;
    p.causal = true;
    return p;
  };
  const ForwardResult da = model.forward(ids, a), db = model.forward(ids, b);
  const int64_t L = da.logits.dim(0), V = da.logits.dim(1);
  double kl_sum = 0;
  for (int64_t i = 0; i < L; ++i) {
    const auto log_softmax = [&](const Tensor& t) {
      std::vector<double> x(static_cast<size_t>(V));
      double m = -INFINITY, s = 0;
      for (int64_t v = 0; v < V; ++v) m = std::max(m, x[size_t(v)] = t.at({i, v}));
      for (double y : x) s += std::exp(y - m);
      for (double& y : x) y -= m + std::log(s);
      return x;
    };
    const auto p = log_softmax(da.logits), q = log_softmax(db.logits);
    for (int64_t v = 0; v < V; ++v)
      kl_sum += std::exp(p[size_t(v)]) * (p[size_t(v)] - q[size_t(v)]);
  }
  EXPECT_NEAR(rep.kl_mean, kl_sum / double(L), 1e-6 * std::max(1.0, kl_sum / double(L)));
  EXPECT_GT(rep.kl_mean, 0.0);
  EXPECT_NEAR(rep.ppl, db.perplexity(), 1e-9 * db.perplexity());
  EXPECT_NEAR(rep.ppl_dense, da.perplexity(), 1e-9 * da.perplexity());
}

TEST(WhatIf, RefusesWhatCannotReplaceALayer) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(20, 97, 7);
  for (VariantId id : {VariantId::dense, VariantId::mla, VariantId::gated_delta}) {
    WhatIfRequest r;
    r.variant = AttentionProblem::defaults(id);
    try {
      what_if(model, ids, r);
      ADD_FAILURE() << "accepted " << variant_info(id).name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("choose from: swa, moba"), std::string::npos)
          << e.what();
    }
  }
  WhatIfRequest bad = swa(0);
  EXPECT_THROW(what_if(model, ids, bad), Error);
  WhatIfRequest range = swa(4);
  range.first_layer = 1;
  range.last_layer = 2;
  EXPECT_THROW(what_if(model, ids, range), Error);
  EXPECT_EQ(parse_layer_range("0-1", 2), std::make_pair(int64_t(0), int64_t(1)));
  EXPECT_EQ(parse_layer_range("1", 2), std::make_pair(int64_t(1), int64_t(1)));
  for (const char* text : {"", "a", "1-0", "0-2", "-1", "0-", "1--2", "0-1x"}) {
    EXPECT_THROW(parse_layer_range(text, 2), Error) << text;
  }
}

TEST(WhatIf, CancelStopsIt) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(30, 97, 8);
  WhatIfRequest r = swa(4);
  double last = 0;
  r.cancel.set_progress_callback([&](double f) {
    last = f;
    if (f >= 0.5) r.cancel.cancel();
  });
  EXPECT_THROW(what_if(model, ids, r), Cancelled);
  EXPECT_GE(last, 0.5);
  EXPECT_LT(last, 1.0);
}

}  // namespace

TEST(WhatIf, AGivenDenseForwardGivesTheSameReport) {
  const Model model = tiny();
  const std::vector<int32_t> ids = random_ids(48, 97, 6);
  ForwardOptions fo;
  fo.capture = true;
  fo.keep_logits = false;
  auto dense = std::make_shared<const ForwardResult>(model.forward(ids, fo));
  for (WhatIfRequest r : {swa(7, 2), moba(8, 2)}) {
    const WhatIfReport fresh = what_if(model, ids, r);
    r.dense = dense;
    const WhatIfReport reused = what_if(model, ids, r);
    SCOPED_TRACE(fresh.variant);
    // The same forward, run again or reused: the same numbers, bit for bit.
    EXPECT_EQ(reused.variant, fresh.variant);
    EXPECT_EQ(reused.ppl, fresh.ppl);
    EXPECT_EQ(reused.ppl_dense, fresh.ppl_dense);
    EXPECT_EQ(reused.kl, fresh.kl);
    ASSERT_EQ(reused.layers.size(), fresh.layers.size());
    for (size_t l = 0; l < fresh.layers.size(); ++l) {
      EXPECT_EQ(reused.layers[l].recall, fresh.layers[l].recall);
      EXPECT_EQ(reused.layers[l].output_error, fresh.layers[l].output_error);
    }
  }
  // A forward of other tokens, or one without its layers, is refused rather than misused.
  WhatIfRequest r = swa(7);
  r.dense = dense;
  const std::vector<int32_t> other = random_ids(48, 97, 7);
  EXPECT_THROW(what_if(model, other, r), Error);
  ForwardOptions bare;
  bare.keep_logits = false;
  r.dense = std::make_shared<const ForwardResult>(model.forward(ids, bare));
  EXPECT_THROW(what_if(model, ids, r), Error);
}
