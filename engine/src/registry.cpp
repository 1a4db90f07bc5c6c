// The one table of variants and backends. Adding a variant means one row here (plus its
// descriptor, reference, fast path, kernel, tests and doc page); nothing else lists variants.
#include "attnscope/registry.hpp"

#include <chrono>
#include <deque>
#include <mutex>

#include "attnscope/calibrate.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/kv_cache.hpp"
#include "cpu/cpu_backend.hpp"
#include "reference/reference.hpp"
#include "slicing.hpp"
#include "variants/variants.hpp"

namespace attnscope {

#define ATTNSCOPE_VARIANT_FNS(v, ref)                                            \
  descriptor::v##_describe, descriptor::v##_validate, descriptor::v##_inputs,    \
      descriptor::v##_check_values, descriptor::v##_infer, reference::ref##_run, \
      reference::ref##_map_tile

const std::vector<VariantInfo>& variants() {
  static const std::vector<VariantInfo> table = {
      {VariantId::dense,
       "dense",
       {"mha", "gqa", "mqa"},
       "Dense attention (MHA / GQA / MQA)",
       "softmax over every visible key; kv_heads < heads shares K/V across query-head groups",
       false,
       true,
       ATTNSCOPE_VARIANT_FNS(dense, dense)},
      {VariantId::swa,
       "swa",
       {"sliding_window"},
       "Sliding-window attention",
       "each query sees its last `window` keys (itself included) plus `sinks` first keys",
       true,
       true,
       ATTNSCOPE_VARIANT_FNS(swa, dense)},
      {VariantId::mla,
       "mla",
       {},
       "Multi-head latent attention (DeepSeek)",
       "keys and values rebuilt from a small shared latent cache; absorbed form never expands them",
       false,
       true,
       ATTNSCOPE_VARIANT_FNS(mla, mla)},
      {VariantId::moba,
       "moba",
       {},
       "Mixture of Block Attention",
       "each query attends to its own block plus the top_k - 1 past blocks whose mean key it "
       "matches best",
       true,
       true,
       ATTNSCOPE_VARIANT_FNS(moba, moba)},
      {VariantId::gated_delta,
       "gated_delta",
       {"gdn", "gated_deltanet"},
       "Gated DeltaNet",
       "linear attention with a gated delta-rule state: constant memory, no softmax",
       true,
       false,
       ATTNSCOPE_VARIANT_FNS(gated_delta, gated_delta)},
  };
  return table;
}
#undef ATTNSCOPE_VARIANT_FNS

const VariantInfo& variant_info(VariantId id) {
  for (const VariantInfo& v : variants()) {
    if (v.id == id) return v;
  }
  throw Error("unknown variant id");
}

const VariantInfo* find_variant(std::string_view name) {
  for (const VariantInfo& v : variants()) {
    if (v.name == name) return &v;
    for (std::string_view a : v.aliases) {
      if (a == name) return &v;
    }
  }
  return nullptr;
}

std::string variant_names() {
  std::string s;
  for (const VariantInfo& v : variants()) {
    if (!s.empty()) s += ", ";
    s += v.name;
    if (!v.aliases.empty()) {
      s += " (";
      for (size_t i = 0; i < v.aliases.size(); ++i)
        s += (i ? ", " : "") + std::string(v.aliases[i]);
      s += ")";
    }
  }
  return s;
}

namespace {

RunResult reference_decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                           const CancelToken& cancel) {
  const AttentionProblem& model = cache.problem();
  const VariantInfo& info = variant_info(model.variant);
  const int64_t B = int64_t(step.sequences.size());
  const ProblemShape& s = model.shape;
  RunResult out;
  out.o = Tensor({B, s.heads, 1, s.v_head_dim});
  if (info.has_lse) out.lse = Tensor({B, s.heads, 1});
  if (model.variant == VariantId::moba)
    out.selection = IndexTensor({B, s.heads, 1, model.moba.top_k}, -1);
  for (int64_t b = 0; b < B; ++b) {
    cancel.throw_if_cancelled();
    const int64_t seq = step.sequences[size_t(b)];
    AttentionProblem p = model;
    p.shape.batch = 1;
    p.shape.q_len = 1;
    p.shape.kv_len = model.variant == VariantId::gated_delta ? 1 : cache.length(seq);
    p.gdn.recurrent = true;
    Inputs in = cache.gather(seq);
    for (const auto& [name, t] : step.inputs.tensors) {
      if (name == "w_uk" || name == "w_uv") {
        in.set(name, t);
      } else if (model.variant == VariantId::gated_delta || name == "q") {
        in.set(name, slice_axis(t, 0, b, b + 1));
      }
    }
    if (model.variant == VariantId::gated_delta) {
      Tensor state = cache.state(seq);
      state.reshape({1, s.heads, s.head_dim, s.v_head_dim});
      in.set("initial_state", std::move(state));
    }
    RunResult r = info.reference(p, in, cancel);
    std::copy(r.o.data(), r.o.data() + r.o.numel(), out.o.data() + b * r.o.numel());
    if (info.has_lse)
      std::copy(r.lse.data(), r.lse.data() + r.lse.numel(), out.lse.data() + b * r.lse.numel());
    if (out.selection && r.selection) {
      std::copy(r.selection->data(), r.selection->data() + r.selection->numel(),
                out.selection->data() + b * r.selection->numel());
    }
    if (model.variant == VariantId::gated_delta) {
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
    if (problem.precision != Precision::fp32) {
      return Support::no("the reference backend computes in float64 on fp32 inputs; " +
                         std::string(precision_name(problem.precision)) +
                         " needs the cuda backend (run with --precision fp32 here)");
    }
    return Support::yes();
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

// A deque: registering appends without moving the entries find_backend has handed out.
std::deque<BackendInfo>& backend_table() {
  static std::deque<BackendInfo> table = {
      cpu::backend_info(),
      {"reference", "float64 reference loops: the oracle every fast path is tested against",
       [] { return Support::yes(); },
       [] { return std::unique_ptr<Backend>(new ReferenceBackend); }},
  };
  return table;
}

std::mutex& backend_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::vector<BackendInfo> backends() {
  std::lock_guard lock(backend_mutex());
  return {backend_table().begin(), backend_table().end()};
}

void register_backend(BackendInfo info) {
  std::lock_guard lock(backend_mutex());
  for (const BackendInfo& b : backend_table()) {
    if (b.name == info.name) return;
  }
  backend_table().push_back(std::move(info));
}

const BackendInfo* find_backend(std::string_view name) {
  std::lock_guard lock(backend_mutex());
  for (const BackendInfo& b : backend_table()) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

std::unique_ptr<Backend> make_backend(std::string_view name) {
  const BackendInfo* info = find_backend(name);
  if (!info) {
    std::string names;
    for (const BackendInfo& b : backends())
      names += (names.empty() ? "" : ", ") + std::string(b.name);
    throw Error("unknown backend '" + std::string(name) + "' (this build has: " + names + ")");
  }
  if (Support s = info->available(); !s.ok) {
    throw Error("backend '" + std::string(name) + "' is not available: " + s.why_not);
  }
  return info->make();
}

}  // namespace attnscope
