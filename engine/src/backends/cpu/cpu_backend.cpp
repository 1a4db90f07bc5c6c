// The "cpu" backend: runs each variant's fast path (VariantInfo::cpu_run, in its module; the
// masked-softmax flash tiles below serve dense and windowed attention) on the persistent pool.
#include "backends/cpu/cpu_backend.hpp"

#include <chrono>
#include <thread>

#include "attnscope/cost.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/flash.hpp"
#include "backends/cpu/paged_decode.hpp"

namespace attnscope::cpu {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(CpuOptions options) : options_(options) {}
  std::string_view name() const override { return "cpu"; }
  std::string device() const override {
    return "CPU, " + std::to_string(threads()) + " threads, Eigen " +
           std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
           std::to_string(EIGEN_MINOR_VERSION) + " (" + Eigen::SimdInstructionSetsInUse() + ")";
  }
  Support supports(const AttentionProblem& problem) const override {
    return host_fp32_support(problem, "cpu", "fp32");
  }
  RunResult run(const AttentionProblem& problem, const Inputs& inputs, const Probes& probes,
                const CancelToken& cancel) override {
    check_inputs(problem, inputs);
    if (Support s = supports(problem); !s.ok) throw Error("cpu backend: " + s.why_not);
    const auto t0 = std::chrono::steady_clock::now();
    const Context c{problem, inputs, options_, threads(), cancel, probes};
    RunResult r = variant_info(problem.variant).cpu_run(c);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    check_outputs_finite(problem, r);
    if (!probes.selection) r.selection.reset();
    if (r.counters.flops == 0) {
      const Cost cost = cost_of(problem);
      r.counters = {cost.flops, cost.bytes, cost.visible_pairs};
    }
    r.backend = "cpu";
    return r;
  }
  RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                   const CancelToken& cancel) override {
    RunResult r = decode_paged(cache, step, threads(), cancel);
    if (!probes.selection) r.selection.reset();
    r.backend = "cpu";
    return r;
  }
  // The roofline's ceilings with exactly the threads this backend computes on.
  DevicePeak measure_peak(const CancelToken& cancel) override {
    DevicePeak peak = measure_cpu_peak(threads(), cancel);
    peak.backend = "cpu";
    peak.device = device();
    return peak;
  }

 private:
  int threads() const {
    const int want = options_.threads > 0 ? options_.threads : default_threads();
    return std::min(want, ThreadPool::global().size());
  }
  CpuOptions options_;
};

}  // namespace

RunResult run_dense(const Context& c) {
  const ProblemShape& s = c.problem.shape;
  RunResult r;
  r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
  r.lse = Tensor({s.batch, s.heads, s.q_len});
  FlashArgs a;
  a.q = c.inputs.at("q").data();
  a.k = c.inputs.at("k").data();
  a.v = c.inputs.at("v").data();
  a.o = r.o.data();
  a.lse = r.lse.data();
  a.B = s.batch, a.H = s.heads, a.Hkv = s.kv_heads, a.Lq = s.q_len, a.Lk = s.kv_len;
  a.Dk = s.head_dim, a.Dv = s.v_head_dim;
  a.mask = KeyMask::of(c.problem);
  a.scale = static_cast<float>(c.problem.effective_scale());
  a.threads = c.threads;
  a.pyramid = c.probes.pyramid;
  r.pyramid = flash_attention(a, c.cancel);
  return r;
}

BackendInfo backend_info() {
  return {"cpu",
          "fast CPU paths: tiled online softmax on Eigen GEMMs, persistent thread pool, split-KV "
          "decode, block selection by collect-and-densify, chunked linear-attention recurrences",
          [] { return Support::yes(); }, [] { return make_cpu_backend(); }};
}

}  // namespace attnscope::cpu

namespace attnscope {

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options) {
  return std::make_unique<cpu::CpuBackend>(options);
}

int cpu_default_threads() {
  return default_threads();
}

}  // namespace attnscope
