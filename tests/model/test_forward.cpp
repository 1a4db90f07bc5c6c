// The model library's forward pass against the independent float64 reference, for every family
// and quirk, on both the fast cpu backend and the engine's reference backend.
//
// Tolerance: the library computes in fp32 (unit roundoff 6e-8). A tiny model's logits go through
// a few dozen dot products of length <= 64 and two softmaxes per layer, so the accumulated
// relative error is ~1e-6 of the values' scale; 1e-4 of max(1, max |ref|) leaves two orders of
// margin for that and still catches any wrong formula (a missing bias, a wrong RoPE band, an eps
// off by 10x or an off-by-one window each move the logits by > 1e-3). Weights are compared after
// rounding to their stored dtype, so F16/BF16 models are held to the same bound.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "fixture.hpp"
#include "reference_forward.hpp"

namespace attnscope::test {
namespace {

constexpr double kTol = 1e-4;

// max |got - want| / max(1, max |want|), after checking the sizes agree.
double rel_error(std::span<const float> got, std::span<const double> want) {
  EXPECT_EQ(got.size(), want.size());
  if (got.size() != want.size()) return INFINITY;
  double diff = 0, scale = 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - want[i]));
    if (!std::isfinite(got[i])) diff = INFINITY;
    scale = std::max(scale, std::abs(want[i]));
  }
  return diff / scale;
}

double max_abs(std::span<const double> v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

struct Case {
  std::string name;
  TinyModelSpec spec;
  int64_t tokens = 40;
};

TinyModelSpec spec_of(std::string type, auto&& edit) {
  TinyModelSpec s;
  s.model_type = std::move(type);
  edit(s);
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"llama_gqa", spec_of("llama", [](auto&) {}), 40});
  c.push_back({"llama_mha_attention_and_mlp_bias",
               spec_of("llama",
                       [](auto& s) {
                         s.kv_heads = 4;
                         s.attention_bias = true;
                         s.mlp_bias = true;
                       }),
               33});
  c.push_back({"llama3_rope_scaling",
               spec_of("llama",
                       [](auto& s) {
                         s.llama3_rope = true;
                         s.rope_theta = 500;
                       }),
               60});
  c.push_back({"llama_explicit_head_dim", spec_of("llama", [](auto& s) { s.head_dim = 16; }), 25});
  c.push_back({"llama_tied", spec_of("llama", [](auto& s) { s.tied = true; }), 30});
  c.push_back({"llama_default_eps", spec_of("llama", [](auto& s) { s.norm_eps.reset(); }), 20});
  c.push_back({"llama_f16", spec_of("llama", [](auto& s) { s.dtype = "F16"; }), 40});
  c.push_back({"llama_bf16", spec_of("llama", [](auto& s) { s.dtype = "BF16"; }), 40});
  c.push_back({"llama_sharded_3",
               spec_of("llama",
                       [](auto& s) {
                         s.shards = 3;
                         s.layers = 3;
                       }),
               30});
  c.push_back({"mistral_window_8",
               spec_of("mistral",
                       [](auto& s) {
                         s.sliding_window = 8;
                         s.kv_heads = 1;
                       }),
               50});
  c.push_back(
      {"mistral_no_window_head_dim", spec_of("mistral", [](auto& s) { s.head_dim = 16; }), 20});
  c.push_back(
      {"mistral_window_past_text", spec_of("mistral", [](auto& s) { s.sliding_window = 64; }), 30});
  c.push_back({"qwen2_qkv_bias_tied",
               spec_of("qwen2",
                       [](auto& s) {
                         s.qkv_bias = true;
                         s.tied = true;
                       }),
               45});
  c.push_back({"qwen2_bf16_sharded",
               spec_of("qwen2",
                       [](auto& s) {
                         s.qkv_bias = true;
                         s.dtype = "BF16";
                         s.shards = 2;
                       }),
               35});
  c.push_back({"qwen3_qk_norm",
               spec_of("qwen3",
                       [](auto& s) {
                         s.qk_norm = true;
                         s.head_dim = 16;
                         s.tied = true;
                       }),
               45});
  c.push_back({"qwen3_f16_untied",
               spec_of("qwen3",
                       [](auto& s) {
                         s.qk_norm = true;
                         s.dtype = "F16";
                       }),
               30});
  c.push_back({"gpt2_prefix", spec_of("gpt2", [](auto& s) { s.intermediate = 4 * s.hidden; }), 50});
  c.push_back({"gpt2_no_prefix_mask_buffers_f16",
               spec_of("gpt2",
                       [](auto& s) {
                         s.gpt2_prefix = false;
                         s.gpt2_mask_buffers = true;
                         s.max_positions = 64;
                         s.dtype = "F16";
                       }),
               40});
  c.push_back({"gpt2_erf_gelu_n_inner_bf16",
               spec_of("gpt2",
                       [](auto& s) {
                         s.gpt2_activation = "gelu";
                         s.dtype = "BF16";
                       }),
               30});
  // RoPE models are not limited by max_position_embeddings (transformers runs past it).
  c.push_back(
      {"llama_past_max_positions", spec_of("llama", [](auto& s) { s.max_positions = 16; }), 30});
  c.push_back({"gpt2_all_positions", spec_of("gpt2", [](auto& s) { s.max_positions = 48; }), 48});
  for (size_t i = 0; i < c.size(); ++i) c[i].spec.seed = 100 + i;
  return c;
}

struct Param {
  Case c;
  std::string backend;
};

std::vector<Param> params() {
  std::vector<Param> out;
  for (const Case& c : cases())
    for (const char* b : {"cpu", "reference"}) out.push_back({c, b});
  return out;
}

class ForwardMatches : public ::testing::TestWithParam<Param> {};

TEST_P(ForwardMatches, LogitsCapturesAndNllMatchTheFloat64Reference) {
  const auto& [c, backend] = GetParam();
  const TinyModel tiny = write_tiny_model(c.spec, test_dir());
  const std::vector<int32_t> ids = random_ids(c.tokens, c.spec.vocab, c.spec.seed);
  const ReferenceResult ref = reference_forward(tiny, ids);
  const Model model = Model::load(tiny.dir);

  ForwardOptions opt;
  opt.backend = backend;
  opt.capture = true;
  std::vector<int64_t> observed;
  opt.observe = [&](int64_t layer, const LayerAttention& la) {
    observed.push_back(layer);
    EXPECT_EQ(la.inputs.at("q").shape(), (Shape{1, ref.heads, c.tokens, ref.head_dim}));
  };
  std::vector<double> progress;
  opt.cancel.set_progress_callback([&](double f) { progress.push_back(f); });
  const ForwardResult got = model.forward(ids, opt);

  const int64_t L = c.tokens, V = c.spec.vocab;
  EXPECT_EQ(got.ids, ids);
  ASSERT_EQ(got.logits.shape(), (Shape{L, V}));
  EXPECT_LE(rel_error(got.logits.span(), ref.logits), kTol) << "logits";
  ASSERT_EQ(got.hidden.shape(), (Shape{L, c.spec.hidden}));
  EXPECT_LE(rel_error(got.hidden.span(), ref.hidden), kTol) << "hidden after the final norm";

  // A log-softmax moves by at most twice the largest logit error, so the nll bound follows.
  const double nll_tol = 2 * kTol * std::max(1.0, max_abs(ref.logits));
  ASSERT_EQ(got.nll.size(), ref.nll.size());
  for (size_t i = 0; i < ref.nll.size(); ++i)
    EXPECT_NEAR(got.nll[i], ref.nll[i], nll_tol) << "nll of token " << i + 1;
  EXPECT_NEAR(got.perplexity() / ref.perplexity, 1.0, nll_tol);

  std::vector<int64_t> want_layers(static_cast<size_t>(c.spec.layers));
  for (int64_t l = 0; l < c.spec.layers; ++l) want_layers[static_cast<size_t>(l)] = l;
  EXPECT_EQ(observed, want_layers) << "observe() once per layer, in order";
  ASSERT_FALSE(progress.empty());
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);

  ASSERT_EQ(got.layers.size(), static_cast<size_t>(c.spec.layers));
  EXPECT_GT(got.capture_bytes, 0);
  const int64_t H = ref.heads, Hkv = ref.kv_heads, Dh = ref.head_dim;
  const bool window = c.spec.model_type == "mistral" && c.spec.sliding_window;
  for (size_t l = 0; l < got.layers.size(); ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const LayerAttention& la = got.layers[l];
    const ReferenceLayer& rl = ref.layers[l];
    const ProblemShape& ps = la.problem.shape;
    EXPECT_EQ(ps.batch, 1);
    EXPECT_EQ(ps.heads, H);
    EXPECT_EQ(ps.kv_heads, Hkv);
    EXPECT_EQ(ps.q_len, L);
    EXPECT_EQ(ps.kv_len, L);
    EXPECT_EQ(ps.head_dim, Dh);
    EXPECT_EQ(ps.v_head_dim, Dh);
    EXPECT_TRUE(la.problem.causal);
    EXPECT_NEAR(la.problem.effective_scale(), 1.0 / std::sqrt(static_cast<double>(Dh)), 1e-7);
    if (window && *c.spec.sliding_window < L) {
      EXPECT_EQ(la.problem.variant, VariantId::swa);
      EXPECT_EQ(la.problem.swa.window, *c.spec.sliding_window);
      EXPECT_EQ(la.problem.swa.sinks, 0);
    } else if (!window) {
      EXPECT_EQ(la.problem.variant, VariantId::dense);
    }
    ASSERT_EQ(la.inputs.at("q").shape(), (Shape{1, H, L, Dh}));
    ASSERT_EQ(la.inputs.at("k").shape(), (Shape{1, Hkv, L, Dh}));
    ASSERT_EQ(la.inputs.at("v").shape(), (Shape{1, Hkv, L, Dh}));
    ASSERT_EQ(la.result.o.shape(), (Shape{1, H, L, Dh}));
    ASSERT_EQ(la.result.lse.shape(), (Shape{1, H, L}));
    EXPECT_LE(rel_error(la.inputs.at("q").span(), rl.q), kTol) << "q after norm and RoPE";
    EXPECT_LE(rel_error(la.inputs.at("k").span(), rl.k), kTol) << "k after norm and RoPE";
    EXPECT_LE(rel_error(la.inputs.at("v").span(), rl.v), kTol) << "v";
    EXPECT_LE(rel_error(la.result.o.span(), rl.o), kTol) << "attention output";
    EXPECT_LE(rel_error(la.result.lse.span(), rl.lse), kTol) << "lse (natural log)";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ForwardMatches, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return info.param.c.name + "_" + info.param.backend;
                         });

Case find_case(const std::string& name) {
  for (const Case& c : cases())
    if (c.name == name) return c;
  throw std::logic_error("no case " + name);
}

TEST(ModelForward, ConfigIsReadAsWritten) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const TinyModel tiny = write_tiny_model(c.spec, test_dir(c.name));
    const Model model = Model::load(tiny.dir);
    const ModelConfig& cfg = model.config();
    const TinyModelSpec& s = c.spec;
    EXPECT_EQ(family_name(cfg.family), s.model_type);
    EXPECT_EQ(cfg.vocab_size, s.vocab);
    EXPECT_EQ(cfg.hidden_size, s.hidden);
    EXPECT_EQ(cfg.layers, s.layers);
    EXPECT_EQ(cfg.heads, s.heads);
    EXPECT_EQ(cfg.kv_heads, s.effective_kv_heads());
    EXPECT_EQ(cfg.head_dim, s.effective_head_dim());
    EXPECT_EQ(cfg.intermediate_size, s.intermediate);
    EXPECT_EQ(cfg.max_positions, s.max_positions);
    EXPECT_DOUBLE_EQ(cfg.norm_eps, s.effective_norm_eps());
    EXPECT_EQ(cfg.tie_word_embeddings, s.tied || s.model_type == "gpt2");
    EXPECT_EQ(cfg.qk_norm, s.qk_norm);
    EXPECT_EQ(cfg.mlp_bias, s.mlp_bias);
    if (s.model_type != "gpt2") {  // qwen2's q/k/v biases come with the family, not a flag
      EXPECT_EQ(cfg.attention_bias || cfg.qkv_bias, s.attention_bias || s.qkv_bias);
    }
    // Qwen configs carry an inactive sliding_window (use_sliding_window false): it must not stick.
    const bool window = s.model_type == "mistral" && s.sliding_window;
    EXPECT_EQ(cfg.window.has_value(), window);
    if (window) {
      EXPECT_EQ(*cfg.window, *s.sliding_window);
    }
    EXPECT_EQ(cfg.rope_llama3.has_value(), s.llama3_rope);
    if (s.model_type != "gpt2") {
      const std::vector<double> want = reference_inv_freq(s);
      const std::vector<double> inv = cfg.rope_inv_freq();
      ASSERT_EQ(inv.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(inv[i] / want[i], 1.0, 1e-12) << i;
    }
  }
}

// transformers' defaults for what a config may leave out, and the spellings it also accepts.
TEST(ModelForward, ConfigDefaultsAndAlternateSpellings) {
  struct Variant {
    std::string tag;
    TinyModelSpec spec;
    std::function<void(nlohmann::json&)> edit;
  };
  TinyModelSpec mha;
  mha.kv_heads = mha.heads;
  TinyModelSpec llama3 = find_case("llama3_rope_scaling").spec;
  const std::vector<Variant> variants = {
      {"defaults", mha,
       [](nlohmann::json& c) {
         for (const char* key : {"num_key_value_heads", "rope_theta", "tie_word_embeddings",
                                 "attention_bias", "mlp_bias", "rope_scaling"})
           c.erase(key);
         c["head_dim"] = nullptr;
       }},
      {"rope_default",
       {},
       [](nlohmann::json& c) {
         c["rope_scaling"] = {{"rope_type", "default"}};
       }},
      {"legacy_type_key", llama3,
       [](nlohmann::json& c) {
         c["rope_scaling"].erase("rope_type");
         c["rope_scaling"]["type"] = "llama3";
       }},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.tag);
    TinyModel tiny = write_tiny_model(v.spec, test_dir(v.tag));
    v.edit(tiny.config);
    write_json(tiny.dir + "/config.json", tiny.config);
    const std::vector<int32_t> ids = random_ids(30, v.spec.vocab, 5);
    const ForwardResult got = Model::load(tiny.dir).forward(ids);
    EXPECT_LE(rel_error(got.logits.span(), reference_forward(tiny, ids).logits), kTol);
  }
}

// The llama3 case must exercise all three bands, or the rope test proves less than it claims.
TEST(ModelForward, Llama3CaseCoversEveryBand) {
  TinyModelSpec s = find_case("llama3_rope_scaling").spec;
  s.llama3_rope = false;
  int keep = 0, blend = 0, divide = 0;
  for (double f : reference_inv_freq(s)) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < 32.0 / 4)
      ++keep;
    else if (wavelen > 32.0 / 1)
      ++divide;
    else
      ++blend;
  }
  EXPECT_GT(keep, 0);
  EXPECT_GT(blend, 0);
  EXPECT_GT(divide, 0);
}

// Each quirk must move the reference's logits well past the tolerance, or its case could pass on
// a library that ignores the quirk: the tests must be able to fail.
TEST(ModelForward, ReferenceSeesEveryQuirk) {
  struct Mutation {
    std::string name;
    std::function<void(TinyModel&)> mutate;
    double min_move = 10 * kTol;
  };
  const auto drop_biases = [](TinyModel& m) {
    std::erase_if(m.weights, [](const auto& kv) { return kv.first.ends_with(".bias"); });
  };
  // gelu_new and erf gelu differ by at most 4.7e-4 (at |x| = 2.7); through ln_f that moves these
  // models' logits by 1.1-2x the tolerance: enough for the gpt2 cases to catch the wrong one.
  const std::vector<Mutation> mutations = {
      {"llama3_rope_scaling", [](TinyModel& m) { m.spec.llama3_rope = false; }},
      {"llama_gqa", [](TinyModel& m) { m.spec.rope_theta = 500000; }},
      {"llama_default_eps", [](TinyModel& m) { m.spec.norm_eps = 1e-5; }},
      {"mistral_window_8", [](TinyModel& m) { m.spec.sliding_window.reset(); }},
      {"mistral_window_8", [](TinyModel& m) { m.spec.sliding_window = 9; }},
      {"mistral_window_8", [](TinyModel& m) { m.spec.sliding_window = 7; }},
      {"qwen3_qk_norm", [](TinyModel& m) { m.spec.qk_norm = false; }},
      {"qwen2_qkv_bias_tied", drop_biases},
      {"llama_mha_attention_and_mlp_bias", drop_biases},
      {"gpt2_prefix", [](TinyModel& m) { m.spec.norm_eps = 1e-3; }},
      {"gpt2_erf_gelu_n_inner_bf16", [](TinyModel& m) { m.spec.gpt2_activation = "gelu_new"; },
       kTol},
      {"gpt2_prefix", [](TinyModel& m) { m.spec.gpt2_activation = "gelu"; }, kTol},
  };
  for (const Mutation& mu : mutations) {
    SCOPED_TRACE(mu.name);
    const Case c = find_case(mu.name);
    TinyModel m = write_tiny_model(c.spec, test_dir(mu.name));
    const std::vector<int32_t> ids = random_ids(c.tokens, c.spec.vocab, c.spec.seed);
    const ReferenceResult base = reference_forward(m, ids);
    mu.mutate(m);
    const ReferenceResult other = reference_forward(m, ids);
    const std::vector<float> as_float(other.logits.begin(), other.logits.end());
    EXPECT_GT(rel_error(as_float, base.logits), mu.min_move);
  }
}

TEST(ModelForward, FixtureRoundsLikeTheHardware) {
  EXPECT_EQ(round_to_dtype(1.0 / 3, "BF16"), 0.333984375);
  EXPECT_EQ(round_to_dtype(1.0 / 3, "F16"), 0.333251953125);
  EXPECT_EQ(round_to_dtype(65504, "F16"), 65504);
  EXPECT_EQ(round_to_dtype(65519, "F16"), 65504);
  EXPECT_TRUE(std::isinf(round_to_dtype(65520, "F16")));
  EXPECT_EQ(round_to_dtype(std::ldexp(1.0, -24), "F16"), std::ldexp(1.0, -24));  // min subnormal
  EXPECT_EQ(round_to_dtype(std::ldexp(1.5, -24), "F16"), std::ldexp(2.0, -24));  // tie to even
  EXPECT_EQ(round_to_dtype(std::ldexp(2.5, -24), "F16"), std::ldexp(2.0, -24));
  EXPECT_EQ(round_to_dtype(1 + std::ldexp(1.0, -11), "F16"), 1.0);  // tie to even (down)
  EXPECT_EQ(round_to_dtype(1 + std::ldexp(3.0, -11), "F16"), 1 + std::ldexp(1.0, -9));
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie to even
  EXPECT_EQ(float_to_bf16_bits(std::bit_cast<float>(0x3f818000u)), 0x3f82);
  EXPECT_EQ(float_to_f16_bits(-2.0f), 0xc000);
}

// Stored 16-bit weights widen exactly: fp32 holds every F16 and BF16 value.
TEST(ModelForward, CheckpointWidensStoredWeightsExactly) {
  for (const char* dtype : {"F32", "F16", "BF16"}) {
    SCOPED_TRACE(dtype);
    TinyModelSpec s;
    s.dtype = dtype;
    s.shards = 2;
    const TinyModel tiny = write_tiny_model(s, test_dir(dtype));
    const Checkpoint ck = Checkpoint::open(tiny.dir);
    std::vector<std::string> want_names;
    int64_t stored = 0, fp32 = 0;
    const int64_t es = std::string(dtype) == "F32" ? 4 : 2;
    for (const auto& [name, values] : tiny.weights) {
      want_names.push_back(name);
      stored += es * static_cast<int64_t>(values.size());
      fp32 += 4 * static_cast<int64_t>(values.size());
    }
    EXPECT_EQ(ck.names(), want_names);
    EXPECT_EQ(ck.stored_bytes(), stored);
    EXPECT_EQ(ck.fp32_bytes(), fp32);
    const StoredType st = std::string(dtype) == "F32"   ? StoredType::f32
                          : std::string(dtype) == "F16" ? StoredType::f16
                                                        : StoredType::bf16;
    for (const auto& [name, values] : tiny.weights) {
      ASSERT_TRUE(ck.has(name)) << name;
      EXPECT_EQ(ck.stored_type(name), st) << name;
      const Shape shape = tiny.shapes.at(name);
      EXPECT_EQ(ck.shape(name), shape) << name;
      const Tensor t = ck.load(name, shape);
      ASSERT_EQ(t.numel(), static_cast<int64_t>(values.size())) << name;
      for (size_t i = 0; i < values.size(); ++i)
        ASSERT_EQ(static_cast<double>(t.data()[i]), values[i]) << name << "[" << i << "]";
    }
    const auto& embed = tiny.w("model.embed_tokens.weight");
    std::vector<float> rows(3 * static_cast<size_t>(s.hidden));
    ck.load_rows("model.embed_tokens.weight", 5, 3, rows.data());
    for (size_t i = 0; i < rows.size(); ++i)
      ASSERT_EQ(static_cast<double>(rows[i]), embed[5 * static_cast<size_t>(s.hidden) + i]) << i;
  }
}

TEST(ModelForward, WithoutLogitsTheNllIsStillComputedAndLmHeadGivesTheRows) {
  const Case c = find_case("qwen3_qk_norm");
  const TinyModel tiny = write_tiny_model(c.spec, test_dir());
  const std::vector<int32_t> ids = random_ids(c.tokens, c.spec.vocab, 7);
  const ReferenceResult ref = reference_forward(tiny, ids);
  const Model model = Model::load(tiny.dir);
  ForwardOptions opt;
  opt.keep_logits = false;
  const ForwardResult got = model.forward(ids, opt);
  EXPECT_TRUE(got.logits.empty());
  EXPECT_TRUE(got.layers.empty()) << "no captures unless asked";
  const double nll_tol = 2 * kTol * std::max(1.0, max_abs(ref.logits));
  ASSERT_EQ(got.nll.size(), ref.nll.size());
  for (size_t i = 0; i < ref.nll.size(); ++i) EXPECT_NEAR(got.nll[i], ref.nll[i], nll_tol) << i;
  const int64_t r0 = 10, r1 = 17, V = c.spec.vocab;
  const Tensor part = model.lm_head(got.hidden, r0, r1);
  ASSERT_EQ(part.shape(), (Shape{r1 - r0, V}));
  EXPECT_LE(rel_error(part.span(), std::span(ref.logits)
                                       .subspan(static_cast<size_t>(r0 * V),
                                                static_cast<size_t>((r1 - r0) * V))),
            kTol);
}

TEST(ModelForward, OneTokenHasNoNllAndNanPerplexity) {
  const TinyModel tiny = write_tiny_model({}, test_dir());
  const Model model = Model::load(tiny.dir);
  const std::vector<int32_t> ids = {42};
  const ForwardResult got = model.forward(ids);
  EXPECT_TRUE(got.nll.empty());
  EXPECT_TRUE(std::isnan(got.perplexity()));
  EXPECT_LE(rel_error(got.logits.span(), reference_forward(tiny, ids).logits), kTol);
}

TEST(ModelForward, CancelBeforeStartThrowsCancelled) {
  const TinyModel tiny = write_tiny_model({}, test_dir());
  const Model model = Model::load(tiny.dir);
  ForwardOptions opt;
  opt.cancel.cancel();
  EXPECT_THROW(model.forward(random_ids(20, 97, 1), opt), Cancelled);
}

TEST(ModelForward, CancelBetweenLayersThrowsCancelled) {
  TinyModelSpec s;
  s.layers = 4;
  const TinyModel tiny = write_tiny_model(s, test_dir());
  const Model model = Model::load(tiny.dir);
  ForwardOptions opt;
  int64_t last = -1;
  opt.observe = [&](int64_t layer, const LayerAttention&) {
    last = layer;
    if (layer == 1) opt.cancel.cancel();
  };
  EXPECT_THROW(model.forward(random_ids(20, 97, 2), opt), Cancelled);
  EXPECT_LT(last, 3) << "the forward kept going after it was cancelled";
}

TEST(ModelForward, MemoryBudgetIsTheThreshold) {
  const TinyModel tiny = write_tiny_model({}, test_dir());
  const Model model = Model::load(tiny.dir);
  const std::vector<int32_t> ids = random_ids(30, 97, 3);
  ForwardOptions opt;
  opt.capture = true;
  const int64_t need = model.forward_bytes(30, opt);
  EXPECT_GT(need, 30 * 97 * 4) << "logits alone take L x V floats";
  ForwardOptions plain;
  EXPECT_LT(model.forward_bytes(30, plain), need) << "captures cost memory";
  opt.memory_budget = need;
  EXPECT_NO_THROW(model.forward(ids, opt));
  opt.memory_budget = need - 1;
  try {
    model.forward(ids, opt);
    ADD_FAILURE() << "a budget one byte short ran";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(std::to_string(need)));
  }
}

TEST(ModelForward, TokenizerIsLoadedWhenPresent) {
  TinyModelSpec s;
  s.vocab = 300;
  const TinyModel tiny = write_tiny_model(s, test_dir());
  EXPECT_FALSE(Model::load(tiny.dir).has_tokenizer());
  write_byte_level_tokenizer(tiny.dir, s.vocab);
  const Model model = Model::load(tiny.dir);
  ASSERT_TRUE(model.has_tokenizer());
  const std::vector<int32_t> ids = model.tokenizer().encode("the cat is in the house");
  ASSERT_FALSE(ids.empty());
  EXPECT_NO_THROW(model.check_ids(ids));
  const ForwardResult got = model.forward(ids);
  EXPECT_LE(rel_error(got.logits.span(), reference_forward(tiny, ids).logits), kTol);
}

}  // namespace
}  // namespace attnscope::test
