// The forward pass: embeddings, the layers (llama family or GPT-2), the final norm, the LM head
// and the next-token loss. Attention goes through the Backend seam; everything else is here.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "attnscope/registry.hpp"
#include "forward/gemm.hpp"
#include "forward/head.hpp"
#include "forward/memory.hpp"
#include "forward/model_impl.hpp"
#include "forward/ops.hpp"
#include "forward/rope.hpp"

namespace attnscope {

using namespace forward_detail;  // NOLINT: this file is the forward's own implementation

namespace {

using Clock = std::chrono::steady_clock;

template <class F>
void timed(double& seconds, F&& fn) {
  const Clock::time_point t0 = Clock::now();
  fn();
  seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

bool same_shape(const ProblemShape& a, const ProblemShape& b) {
  return a.batch == b.batch && a.heads == b.heads && a.kv_heads == b.kv_heads &&
         a.q_len == b.q_len && a.kv_len == b.kv_len && a.head_dim == b.head_dim &&
         a.v_head_dim == b.v_head_dim;
}

// What one forward works with; the buffers are reused by every layer.
struct Pass {
  const ModelConfig& c;
  const ForwardOptions& options;
  Backend& backend;
  ForwardResult& result;
  AttentionProblem own;
  RopeTable rope;
  int64_t L;
  Tensor x, h, proj, attn, mlp;
  // The last layer's q, k, v when nothing kept them: the next layer writes into their storage
  // instead of faulting in fresh pages.
  Inputs spare;
  Tensor spare_tensor(const char* name) {
    auto it = spare.tensors.find(name);
    return it == spare.tensors.end() ? Tensor() : std::move(it->second);
  }
};

// Runs layer `layer`'s attention on q, k, v (head-major) and leaves the output token-major in
// pass.attn [L, H * Dh].
void attend(Pass& pass, int64_t layer, Tensor q, Tensor k, Tensor v) {
  ForwardTimes& t = pass.result.seconds;
  AttentionProblem problem = pass.own;
  if (pass.options.replace) {
    if (std::optional<AttentionProblem> other = pass.options.replace(layer, pass.own)) {
      if (!same_shape(other->shape, pass.own.shape)) {
        throw Error("layer " + std::to_string(layer) + ": the replacement attention (" +
                    other->describe() + ") does not take the layer's q, k, v (" +
                    pass.own.describe() + ")");
      }
      problem = *other;
    }
  }
  const Support support = pass.backend.supports(problem);
  if (!support.ok) {
    throw Error("layer " + std::to_string(layer) + ": backend '" +
                std::string(pass.backend.name()) + "' cannot run " + problem.describe() + ": " +
                support.why_not);
  }
  LayerAttention la;
  la.problem = problem;
  la.inputs.set("q", std::move(q));
  la.inputs.set("k", std::move(k));
  la.inputs.set("v", std::move(v));
  // The backend reports its own 0..1 progress; the caller's token must see the forward's, so the
  // backend gets a token of its own that maps its fraction into this layer's share and passes
  // the caller's cancellation on at every report (and before the run).
  const CancelToken& outer = pass.options.cancel;
  CancelToken inner;
  const CancelToken* inner_ptr = &inner;  // not a copy: a copy would own its own callback
  const double layers = double(pass.c.layers);
  inner.set_progress_callback([&outer, inner_ptr, layer, layers](double f) {
    if (outer.cancelled()) inner_ptr->cancel();
    outer.report((double(layer) + std::clamp(f, 0.0, 1.0)) / layers);
  });
  if (outer.cancelled()) inner.cancel();
  timed(t.attention, [&] { la.result = pass.backend.run(problem, la.inputs, Probes{}, inner); });
  outer.throw_if_cancelled();
  if (pass.options.observe) pass.options.observe(layer, la);
  from_heads(la.result.o, pass.attn.data());
  if (pass.options.capture) {
    int64_t bytes = la.result.o.bytes() + la.result.lse.bytes();
    for (const auto& [name, tensor] : la.inputs.tensors) bytes += tensor.bytes();
    pass.result.capture_bytes += bytes;
    pass.result.layers.push_back(std::move(la));
  } else {
    pass.spare = std::move(la.inputs);
  }
}

void llama_layer(Pass& pass, int64_t layer, const WeightSet& w) {
  const ModelConfig& c = pass.c;
  const int64_t L = pass.L, d = c.hidden_size, Dh = c.head_dim;
  const int64_t qw = c.heads * Dh, kvw = c.kv_heads * Dh, inter = c.intermediate_size;
  ForwardTimes& t = pass.result.seconds;
  float* x = pass.x.data();
  float* h = pass.h.data();
  float* q = pass.proj.data();
  float* k = q + L * qw;
  float* v = k + L * kvw;
  rms_norm(x, h, L, d, w[Role::in_norm], c.norm_eps);
  timed(t.gemm, [&] {
    linear(h, L, d, w[Role::q], qw, q);
    linear(h, L, d, w[Role::k], kvw, k);
    linear(h, L, d, w[Role::v], kvw, v);
    if (w[Role::q_bias]) {
      add_bias(q, L, qw, w[Role::q_bias]);
      add_bias(k, L, kvw, w[Role::k_bias]);
      add_bias(v, L, kvw, w[Role::v_bias]);
    }
  });
  if (c.qk_norm) {
    head_rms_norm(q, L, c.heads, Dh, w[Role::q_norm], c.norm_eps);
    head_rms_norm(k, L, c.kv_heads, Dh, w[Role::k_norm], c.norm_eps);
  }
  apply_rope(q, L, c.heads, Dh, pass.rope);
  apply_rope(k, L, c.kv_heads, Dh, pass.rope);
  attend(pass, layer, to_heads(q, L, qw, 0, c.heads, Dh, pass.spare_tensor("q")),
         to_heads(k, L, kvw, 0, c.kv_heads, Dh, pass.spare_tensor("k")),
         to_heads(v, L, kvw, 0, c.kv_heads, Dh, pass.spare_tensor("v")));
  float* gate = pass.mlp.data();
  float* up = gate + L * inter;
  timed(t.gemm, [&] {
    linear(pass.attn.data(), L, qw, w[Role::o], d, x, /*accumulate=*/true);
    if (w[Role::o_bias]) add_bias(x, L, d, w[Role::o_bias]);
  });
  rms_norm(x, h, L, d, w[Role::post_norm], c.norm_eps);
  timed(t.gemm, [&] {
    linear(h, L, d, w[Role::gate], inter, gate);
    linear(h, L, d, w[Role::up], inter, up);
    if (w[Role::gate_bias]) {
      add_bias(gate, L, inter, w[Role::gate_bias]);
      add_bias(up, L, inter, w[Role::up_bias]);
    }
  });
  silu_mul(gate, up, L, inter);
  timed(t.gemm, [&] {
    linear(gate, L, inter, w[Role::down], d, x, /*accumulate=*/true);
    if (w[Role::down_bias]) add_bias(x, L, d, w[Role::down_bias]);
  });
}

void gpt2_layer(Pass& pass, int64_t layer, const WeightSet& w) {
  const ModelConfig& c = pass.c;
  const int64_t L = pass.L, d = c.hidden_size, Dh = c.head_dim, inter = c.intermediate_size;
  ForwardTimes& t = pass.result.seconds;
  float* x = pass.x.data();
  float* h = pass.h.data();
  float* qkv = pass.proj.data();
  layer_norm(x, h, L, d, w[Role::in_norm], w[Role::in_norm_bias], c.norm_eps);
  timed(t.gemm, [&] {
    conv1d(h, L, d, w[Role::qkv], 3 * d, qkv);
    add_bias(qkv, L, 3 * d, w[Role::qkv_bias]);
  });
  attend(pass, layer, to_heads(qkv, L, 3 * d, 0, c.heads, Dh, pass.spare_tensor("q")),
         to_heads(qkv, L, 3 * d, d, c.heads, Dh, pass.spare_tensor("k")),
         to_heads(qkv, L, 3 * d, 2 * d, c.heads, Dh, pass.spare_tensor("v")));
  timed(t.gemm, [&] {
    conv1d(pass.attn.data(), L, d, w[Role::o], d, x, /*accumulate=*/true);
    add_bias(x, L, d, w[Role::o_bias]);
  });
  layer_norm(x, h, L, d, w[Role::post_norm], w[Role::post_norm_bias], c.norm_eps);
  float* fc = pass.mlp.data();
  timed(t.gemm, [&] {
    conv1d(h, L, d, w[Role::up], inter, fc);
    add_bias(fc, L, inter, w[Role::up_bias]);
  });
  gelu(fc, L, inter, c.activation == "gelu_new");
  timed(t.gemm, [&] {
    conv1d(fc, L, inter, w[Role::down], d, x, /*accumulate=*/true);
    add_bias(x, L, d, w[Role::down_bias]);
  });
}

// x = token embeddings (+ learned positions), read row by row from the mapped file.
void embed(const Checkpoint& ck, const WeightLayout& layout, std::span<const int32_t> ids,
           Tensor& x) {
  const int64_t L = static_cast<int64_t>(ids.size()), d = x.dim(1);
  const std::string& table = layout.global(Role::embed)->name;
  float* out = x.data();
  for (int64_t i = 0; i < L; ++i) ck.load_rows(table, ids[size_t(i)], 1, out + i * d);
  if (const checkpoint_detail::TensorSpec* positions = layout.global(Role::positions)) {
    Tensor pos({L, d});
    ck.load_rows(positions->name, 0, L, pos.data());
    add_bias(out, 1, L * d, pos.data());
  }
}

// The LM head and the loss; logits kept in the result or computed a chunk of rows at a time.
void head(Pass& pass, const float* lm_head, std::span<const int32_t> ids) {
  const int64_t L = pass.L, d = pass.c.hidden_size, V = pass.c.vocab_size;
  ForwardResult& r = pass.result;
  r.nll.assign(size_t(L - 1), 0.0);
  const float* hidden = r.hidden.data();
  if (pass.options.keep_logits) {
    r.logits = Tensor({L, V});
    timed(r.seconds.gemm, [&] { logits_rows(hidden, L, d, lm_head, V, 0, L, r.logits.data()); });
    next_token_nll(r.logits.data(), 0, L, V, ids, r.nll.data());
    return;
  }
  const int64_t rows = nll_chunk_rows(L, V);
  Tensor chunk({rows, V});
  for (int64_t r0 = 0; r0 < L - 1; r0 += rows) {
    pass.options.cancel.throw_if_cancelled();
    const int64_t r1 = std::min(L - 1, r0 + rows);
    timed(r.seconds.gemm, [&] { logits_rows(hidden, L, d, lm_head, V, r0, r1, chunk.data()); });
    next_token_nll(chunk.data(), r0, r1, V, ids, r.nll.data());
  }
}

}  // namespace

ForwardResult Model::forward(std::span<const int32_t> ids, const ForwardOptions& options) const {
  const Clock::time_point start = Clock::now();
  check_ids(ids);
  const ModelConfig& c = config();
  const int64_t L = static_cast<int64_t>(ids.size());
  const WeightStore& store = *impl_->weights;
  check_budget(forward_memory(c, store.forward_weight_bytes(), L, options), L,
               forward_budget(options));
  options.cancel.throw_if_cancelled();
  const std::unique_ptr<Backend> backend = make_backend(options.backend);

  ForwardResult result;
  result.ids.assign(ids.begin(), ids.end());
  const bool gpt2 = c.family == ModelFamily::gpt2;
  const int64_t d = c.hidden_size;
  Pass pass{c, options, *backend, result, attention_problem(L), {}, L, {}, {}, {}, {}, {}, {}};
  pass.x = Tensor({L, d});
  pass.h = Tensor({L, d});
  pass.proj = Tensor({L, gpt2 ? 3 * d : (c.heads + 2 * c.kv_heads) * c.head_dim});
  pass.attn = Tensor({L, c.heads * c.head_dim});
  pass.mlp = Tensor({L, (gpt2 ? 1 : 2) * c.intermediate_size});
  if (!gpt2) pass.rope = rope_table(impl_->inv_freq, L);
  WeightStore::Session weights = store.session();
  embed(impl_->checkpoint, store.layout(), ids, pass.x);

  for (int64_t layer = 0; layer < c.layers; ++layer) {
    options.cancel.throw_if_cancelled();
    const WeightSet& w = weights.layer(layer);
    if (gpt2) {
      gpt2_layer(pass, layer, w);
    } else {
      llama_layer(pass, layer, w);
    }
    // A non-finite residual stream means a NaN/Inf weight or an fp32 overflow: say where, rather
    // than hand NaN logits (or a later layer's "input q is not finite") to the caller.
    if (const int64_t at = first_non_finite(pass.x); at >= 0) {
      throw Error("the forward produced a NaN or Inf in layer " + std::to_string(layer) +
                  " (token " + std::to_string(at / d) +
                  "): the checkpoint holds non-finite weights or values that overflow fp32");
    }
    options.cancel.report(double(layer + 1) / double(c.layers));
  }
  options.cancel.throw_if_cancelled();

  const WeightSet& g = weights.globals();
  result.hidden = std::move(pass.h);  // the normed input of the LM head
  if (gpt2) {
    layer_norm(pass.x.data(), result.hidden.data(), L, d, g[Role::final_norm],
               g[Role::final_norm_bias], c.norm_eps);
  } else {
    rms_norm(pass.x.data(), result.hidden.data(), L, d, g[Role::final_norm], c.norm_eps);
  }
  head(pass, g[Role::lm_head], ids);
  const bool logits_finite = !options.keep_logits || first_non_finite(result.logits) < 0;
  if (!logits_finite || !std::all_of(result.nll.begin(), result.nll.end(),
                                     [](double v) { return std::isfinite(v); })) {
    throw Error(
        "the LM head produced a NaN or Inf logit: the checkpoint's head or final norm holds "
        "non-finite weights or values that overflow fp32");
  }

  result.weight_bytes = weights.widened_bytes();
  ForwardTimes& t = result.seconds;
  t.total = std::chrono::duration<double>(Clock::now() - start).count();
  t.other = std::max(0.0, t.total - t.attention - t.gemm);
  return result;
}

}  // namespace attnscope
