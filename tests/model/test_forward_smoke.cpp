// The forward's own machinery beyond the families' arithmetic (test_forward.cpp has that): the
// streaming weight path taken when widened weights would not fit, what-if replacement of a layer's
// attention, timing, and capture accounting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "fixture.hpp"
#include "reference_forward.hpp"

namespace attnscope::test {
namespace {

double rel_error(std::span<const float> got, std::span<const double> want) {
  if (got.size() != want.size()) return INFINITY;
  double diff = 0, scale = 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - want[i]));
    if (!std::isfinite(got[i])) diff = INFINITY;
    scale = std::max(scale, std::abs(want[i]));
  }
  return diff / scale;
}

// Sets an environment variable for the scope of one statement block.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) {
      unsetenv(name_);
    } else {
      setenv(name_, old_.c_str(), 1);
    }
  }

 private:
  const char* name_;
  std::string old_;
};

// Widened weights of ~5 MiB: above 40% of a 1 MiB budget (streamed), far below the machine's.
TinyModelSpec big_bf16() {
  TinyModelSpec s;
  s.hidden = 256;
  s.heads = 4;
  s.kv_heads = 2;
  s.intermediate = 512;
  s.vocab = 300;
  s.dtype = "BF16";
  s.attention_bias = true;
  return s;
}

TEST(ForwardSmoke, StreamedWeightsGiveTheSameLogitsAsCachedOnes) {
  const TinyModel tiny = write_tiny_model(big_bf16(), test_dir());
  const std::vector<int32_t> ids = random_ids(24, tiny.spec.vocab, 5);
  const Model cached = Model::load(tiny.dir);
  std::optional<Model> streamed;
  {
    const ScopedEnv limit("ATTNSCOPE_MEMORY_LIMIT_MB", "1");
    streamed = Model::load(tiny.dir);
  }
  ForwardOptions opt;
  opt.memory_budget = int64_t(1) << 30;
  const ForwardResult a = cached.forward(ids, opt);
  const ForwardResult b = streamed->forward(ids, opt);
  ASSERT_EQ(a.logits.shape(), b.logits.shape());
  for (int64_t i = 0; i < a.logits.numel(); ++i) {
    ASSERT_EQ(a.logits.data()[i], b.logits.data()[i]) << i;
  }
  // Streaming widens every layer per forward: more bytes widened than one copy of the weights.
  EXPECT_GT(b.weight_bytes, 0);
  EXPECT_GT(a.weight_bytes, 0);
  EXPECT_LT(streamed->forward_bytes(24, opt), cached.forward_bytes(24, opt))
      << "a streamed forward holds one layer's weights, a cached one all of them";
  const ReferenceResult ref = reference_forward(tiny, ids);
  EXPECT_LE(rel_error(b.logits.span(), ref.logits), 1e-4);
  const Tensor rows = streamed->lm_head(b.hidden, 3, 9);
  for (int64_t i = 0; i < rows.numel(); ++i) {
    ASSERT_EQ(rows.data()[i], b.logits.data()[3 * tiny.spec.vocab + i]) << i;
  }
}

TEST(ForwardSmoke, ReplacementRunsInsteadOfTheLayersOwnAttention) {
  const TinyModel tiny = write_tiny_model({}, test_dir());
  const Model model = Model::load(tiny.dir);
  const std::vector<int32_t> ids = random_ids(30, tiny.spec.vocab, 9);
  ForwardOptions opt;
  opt.capture = true;
  const ForwardResult dense = model.forward(ids, opt);
  EXPECT_GT(dense.seconds.total, 0);
  EXPECT_GT(dense.seconds.attention, 0);
  EXPECT_GT(dense.seconds.gemm, 0);
  EXPECT_NEAR(dense.seconds.attention + dense.seconds.gemm + dense.seconds.other,
              dense.seconds.total, 1e-9);
  int64_t held = 0;
  for (const LayerAttention& la : dense.layers) {
    held += la.result.o.bytes() + la.result.lse.bytes();
    for (const auto& [name, t] : la.inputs.tensors) held += t.bytes();
  }
  EXPECT_EQ(dense.capture_bytes, held);

  opt.replace = [](int64_t layer, const AttentionProblem& own) -> std::optional<AttentionProblem> {
    if (layer != 1) return std::nullopt;
    AttentionProblem p = own;
    p.variant = VariantId::swa;
    p.swa.window = 4;
    return p;
  };
  std::vector<VariantId> seen;
  opt.observe = [&](int64_t, const LayerAttention& la) { seen.push_back(la.problem.variant); };
  const ForwardResult swa = model.forward(ids, opt);
  EXPECT_EQ(seen, (std::vector<VariantId>{VariantId::dense, VariantId::swa}));
  ASSERT_EQ(swa.layers.size(), 2u);
  // Layer 0 is untouched, layer 1's output moved, and so did the logits.
  for (int64_t i = 0; i < swa.layers[0].result.o.numel(); ++i) {
    ASSERT_EQ(swa.layers[0].result.o.data()[i], dense.layers[0].result.o.data()[i]);
  }
  double moved = 0;
  for (int64_t i = 0; i < swa.logits.numel(); ++i) {
    moved = std::max(moved, double(std::abs(swa.logits.data()[i] - dense.logits.data()[i])));
  }
  EXPECT_GT(moved, 1e-3);

  opt.replace = [](int64_t, const AttentionProblem& own) -> std::optional<AttentionProblem> {
    AttentionProblem p = own;
    p.shape.head_dim += 2;
    return p;
  };
  try {
    model.forward(ids, opt);
    ADD_FAILURE() << "a replacement of another shape ran";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("layer 0"));
  }
}

TEST(ForwardSmoke, AttentionProblemFollowsTheWindow) {
  TinyModelSpec s;
  s.model_type = "mistral";
  s.sliding_window = 8;
  const TinyModel tiny = write_tiny_model(s, test_dir());
  const Model model = Model::load(tiny.dir);
  EXPECT_EQ(model.attention_problem(8).variant, VariantId::dense);
  const AttentionProblem p = model.attention_problem(9);
  EXPECT_EQ(p.variant, VariantId::swa);
  EXPECT_EQ(p.swa.window, 8);
  EXPECT_EQ(p.swa.sinks, 0);
  EXPECT_TRUE(p.causal);
  EXPECT_THROW(model.attention_problem(0), Error);
}

}  // namespace
}  // namespace attnscope::test
