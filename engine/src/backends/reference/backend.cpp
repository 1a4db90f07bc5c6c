// The "reference" backend: the oracle as a backend, every variant, float64 loops, one thread.
#include <algorithm>
#include <chrono>

#include "attnscope/cost.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/slicing.hpp"
#include "backends/reference/reference.hpp"

namespace attnscope::reference {
namespace {

// One sequence at a time: read it back through its page table into contiguous tensors and run the
// oracle on the single query row (a state cache: one recurrent step from the cached state).
RunResult reference_decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                           const CancelToken& cancel) {
  const AttentionProblem& model = cache.problem();
  const VariantInfo& info = variant_info(model.variant);
  const CacheSpec spec = info.cache(model);
  const int64_t B = int64_t(step.sequences.size());
  const ProblemShape& s = model.shape;
  RunResult out;
  out.o = Tensor({B, s.heads, 1, s.v_head_dim});
  if (info.has_lse()) out.lse = Tensor({B, s.heads, 1});
  if (info.has_selection())
    out.selection = IndexTensor({B, s.heads, 1, info.selection(model).top_k}, -1);
  for (int64_t b = 0; b < B; ++b) {
    cancel.throw_if_cancelled();
    const int64_t seq = step.sequences[size_t(b)];
    AttentionProblem p = decode_form(model);
    p.shape.batch = 1;
    p.shape.q_len = 1;
    p.shape.kv_len = info.has_state ? 1 : cache.length(seq);
    Inputs in = cache.gather(seq);
    for (const auto& [name, t] : step.inputs.tensors) {
      if (info.token_axis && info.token_axis(name) < 0) {
        in.set(name, t);  // weights, shared by the batch
      } else if (name != spec.key_tensor && name != spec.value_tensor &&
                 (spec.side_width == 0 || name != spec.side_tensor)) {
        in.set(name, slice_axis(t, 0, b, b + 1));  // the cached parts came from the cache
      }
    }
    if (info.has_state) {
      Tensor state = cache.state(seq);
      state.reshape({1, s.heads, s.head_dim, s.v_head_dim});
      in.set("initial_state", std::move(state));
    }
    RunResult r = info.reference(p, in, cancel);
    std::copy(r.o.data(), r.o.data() + r.o.numel(), out.o.data() + b * r.o.numel());
    if (info.has_lse())
      std::copy(r.lse.data(), r.lse.data() + r.lse.numel(), out.lse.data() + b * r.lse.numel());
    if (out.selection && r.selection) {
      std::copy(r.selection->data(), r.selection->data() + r.selection->numel(),
                out.selection->data() + b * r.selection->numel());
    }
    // The variant's extra outputs (NSA's branch lse's, a selection of kv heads or keys): each
    // row's one-sequence tensor is row b of the batch's.
    for (auto& [name, t] : r.extra) {
      if (b == 0) {
        Shape shape = t.shape();
        shape[0] = B;
        out.extra.insert_or_assign(name, Tensor(shape));
      }
      std::copy(t.data(), t.data() + t.numel(), out.extra.at(name).data() + b * t.numel());
    }
    for (auto& [name, t] : r.extra_index) {
      if (b == 0) {
        Shape shape = t.shape();
        shape[0] = B;
        out.extra_index.insert_or_assign(name, IndexTensor(shape, -1));
      }
      std::copy(t.data(), t.data() + t.numel(), out.extra_index.at(name).data() + b * t.numel());
    }
    if (info.has_state) {
      Tensor next = std::move(*r.final_state);
      next.reshape({s.heads, s.head_dim, s.v_head_dim});
      cache.set_state(seq, std::move(next));
    }
  }
  if (!probes.selection) out.selection.reset();
  out.backend = "reference";
  return out;
}

// The oracle as a backend: every variant, float64 loops, single thread.
class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }
  std::string device() const override { return "CPU, float64 reference loops (1 thread)"; }
  // The oracle is float64 on fp32 inputs; the naive bf16/fp16 baseline is naive_lowp_reference
  // (lowp.hpp), a test tool rather than a backend.
  Support supports(const AttentionProblem& problem) const override {
    return host_fp32_support(problem, "reference", "float64 on fp32 inputs");
  }
  RunResult run(const AttentionProblem& problem, const Inputs& inputs, const Probes& probes,
                const CancelToken& cancel) override {
    check_inputs(problem, inputs);
    if (Support s = supports(problem); !s.ok) throw Error("reference backend: " + s.why_not);
    const auto t0 = std::chrono::steady_clock::now();
    RunResult r = variant_info(problem.variant).reference(problem, inputs, cancel);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    check_outputs_finite(problem, r);
    if (!probes.selection) r.selection.reset();
    const Cost c = cost_of(problem);
    r.counters = {c.flops, c.bytes, c.visible_pairs};
    r.backend = std::string(name());
    return r;
  }
  // Decode the plain way: read each sequence back through its page table into contiguous tensors
  // and run the reference on the single query row (Gated DeltaNet: one recurrent step from the
  // cached state). Independent of the fast paths' page walking, so it can judge them.
  RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                   const CancelToken& cancel) override {
    return reference_decode(cache, step, probes, cancel);
  }
  // The oracle is single-threaded: its ceilings are one core's.
  DevicePeak measure_peak(const CancelToken& cancel) override {
    DevicePeak peak = measure_cpu_peak(1, cancel);
    peak.backend = std::string(name());
    peak.device = device();
    return peak;
  }
};

}  // namespace

BackendInfo backend_info() {
  return {"reference", "float64 reference loops: the oracle every fast path is tested against",
          [] { return Support::yes(); },
          [] { return std::unique_ptr<Backend>(new ReferenceBackend); }};
}

}  // namespace attnscope::reference
