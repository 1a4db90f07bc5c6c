// The "cuda" Backend: checks inputs, copies host tensors to device buffers, runs the variant's
// kernels on one stream (checking the CancelToken between launches) and copies results back.
// What differs per variant comes from its CudaVariant hooks (cuda_variant.hpp). Decode through the
// paged KV cache goes to PagedDecoder (cuda_decode.cpp), the device peaks to measure_cuda_peak
// (peak.cu).
#include "attnscope/cuda/backend.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/mask.hpp"
#include "cuda_check.hpp"
#include "cuda_decode.hpp"
#include "cuda_host.hpp"
#include "cuda_map.hpp"
#include "cuda_variant.hpp"
#include "launchers.hpp"
#include "peak.hpp"

namespace attnscope::cuda {
namespace {

// Device bytes a run needs: inputs, outputs and the largest workspaces (rough upper bound).
double device_bytes(const AttentionProblem& p, const CudaVariant& cv) {
  const ProblemShape& s = p.shape;
  double n = 0;
  for (const TensorSpec& spec : variant_info(p.variant).inputs(p)) {
    double numel = 1;
    for (int64_t d : spec.shape) numel *= double(d);
    n += numel;
  }
  const double rows = double(s.batch) * s.heads * s.q_len;
  n += rows * (s.v_head_dim + 1);  // o, lse
  n += cv.workspace_floats ? cv.workspace_floats(p)
                           : 64 * rows * (s.v_head_dim + 1);  // split-KV partials, <= 64 splits
  return 4.0 * n;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(CudaOptions options) : options_(options) {}
  std::string_view name() const override { return "cuda"; }
  std::string device() const override {
    const std::vector<std::string> lines = describe_devices();
    return lines.empty() ? "CUDA" : lines.front();
  }

  Support supports(const AttentionProblem& p) const override {
    if (auto why = p.validate()) return Support::no(*why);
    const Support dev = device_available();
    if (!dev.ok) return dev;
    try {
      return shape_support(p);
    } catch (const Error& e) {
      return Support::no(e.what());
    }
  }

  RunResult run(const AttentionProblem& p, const Inputs& in, const Probes& probes,
                const CancelToken& cancel) override {
    check_inputs(p, in);
    const Support sup = supports(p);
    if (!sup.ok) throw Error("cuda backend: " + sup.why_not);
    cancel.throw_if_cancelled();
    const auto t0 = std::chrono::steady_clock::now();
    ensure_stream();
    const cudaStream_t s = stream_->get();

    Arena arena;
    SyncGuard guard{s};  // destroyed before arena: drains the stream first
    RunResult r = p.precision == Precision::fp32 ? run_fp32(p, in, arena, s, cancel)
                                                 : run_tensor_core(p, in, arena, s);
    stream_->synchronize();
    check_cuda(cudaGetLastError(), "cuda backend run");
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    check_outputs_finite(p, r);
    if (!probes.selection) r.selection.reset();
    const Cost cost = cost_of(p, element_bytes(p.precision));
    r.counters = {cost.flops, cost.bytes, cost.visible_pairs};
    r.backend = "cuda";
    return r;
  }

  RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                   const CancelToken& cancel) override {
    const Support dev = device_available();
    if (!dev.ok) throw Error("cuda backend: " + dev.why_not);
    cancel.throw_if_cancelled();
    const auto t0 = std::chrono::steady_clock::now();
    ensure_stream();
    if (!decoder_) decoder_ = std::make_unique<PagedDecoder>();
    RunResult r = decoder_->decode(cache, step, probes, cancel,
                                   {stream_->get(), blas_->get(), sm_count(), options_.kv_splits});
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

  DevicePeak measure_peak(const CancelToken& cancel) override {
    DevicePeak peak = measure_cuda_peak(cancel);
    peak.device = device();
    return peak;
  }

  // Softmax maps are recomputed and pooled on the device (cuda_map.cpp); implicit maps, and any
  // map when no device is usable, on the host.
  Tensor attention_map(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                       const MapRequest& request, const CancelToken& cancel) override {
    if (!map_on_device(p) || !device_available().ok) {
      return Backend::attention_map(p, in, r, request, cancel);
    }
    ensure_stream();
    return device_attention_map(p, in, r, request, cancel, stream_->get());
  }

 private:
  void ensure_stream() {
    if (!stream_) {
      stream_ = std::make_unique<Stream>();
      blas_ = std::make_unique<CublasHandle>(stream_->get());
    }
  }

  // Shape limits of the v1 kernels, and whether the run fits in free device memory.
  Support shape_support(const AttentionProblem& p) const {
    const ProblemShape& s = p.shape;
    if (!find_cuda_variant(p.variant)) {
      return Support::no(std::string(variant_info(p.variant).name) + ": " +
                         std::string(cuda_refusal(p.variant)));
    }
    for (int64_t d : {s.batch, s.heads, s.kv_heads, s.q_len, s.kv_len, s.head_dim, s.v_head_dim}) {
      if (d > INT_MAX / 2) return Support::no("a dimension above 2^30 is beyond the CUDA kernels");
    }
    if (s.batch > 65535 || s.heads > 65535) {
      return Support::no("batch and heads must each be at most 65535 on CUDA (grid limits)");
    }
    const size_t smem_max = max_shared_memory_per_block();
    if (p.precision != Precision::fp32) {
      // bf16/fp16 go to the tensor-core kernel only; it never falls back to fp32 silently.
      if (Support tc = tensor_core_support(p); !tc.ok) return tc;
      const int major =
          device_attribute(cudaDevAttrComputeCapabilityMajor, "cudaDevAttrComputeCapabilityMajor");
      if (major < 8) {
        return Support::no(std::string(precision_name(p.precision)) +
                           " on CUDA needs compute capability 8.0 or newer (mma.sync bf16, "
                           "cp.async); this device is " +
                           str(major) + ".x: use --precision fp32");
      }
      if (flash_tc_smem_bytes(int(s.head_dim)) > smem_max) {
        return Support::no("the tensor-core kernel's tiles for head_dim " + str(s.head_dim) +
                           " do not fit in this device's shared memory");
      }
    }
    const CudaVariant& cv = *find_cuda_variant(p.variant);
    const Support shape =
        cv.supports ? cv.supports(p, smem_max) : flash_fits(s.head_dim, "head_dim", smem_max);
    if (!shape.ok) return shape;
    size_t free_bytes = 0, total_bytes = 0;
    check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const double need = device_bytes(p, cv);
    if (need > 0.9 * double(free_bytes)) {
      return Support::no("needs about " + str(int64_t(need / (1 << 20))) +
                         " MiB of device memory, " + str(int64_t(free_bytes >> 20)) + " MiB free");
    }
    return Support::yes();
  }

  static RunResult softmax_result(const ProblemShape& s) {
    RunResult r;
    r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
    r.lse = Tensor({s.batch, s.heads, s.q_len});
    return r;
  }

  // fp32: every input the problem names goes up, the outputs its capabilities promise come back.
  RunResult run_fp32(const AttentionProblem& p, const Inputs& in, Arena& arena, cudaStream_t st,
                     const CancelToken& cancel) {
    const ProblemShape& s = p.shape;
    const VariantInfo& info = variant_info(p.variant);
    DeviceTensors inputs;
    for (const TensorSpec& spec : info.inputs(p)) {
      if (in.has(spec.name)) inputs.add(spec.name, arena.upload(in.at(spec.name), st));
    }
    const std::optional<BlockSelection> sel = block_selection(p);
    RunResult r;
    r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
    if (info.has_lse()) r.lse = Tensor({s.batch, s.heads, s.q_len});
    IndexTensor selection;
    if (sel) selection = IndexTensor({s.batch, s.heads, s.q_len, sel->top_k}, -1);
    Tensor final_state;
    if (info.has_state) final_state = Tensor({s.batch, s.heads, s.head_dim, s.v_head_dim});
    DeviceRun run{.problem = p, .inputs = inputs, .cancel = cancel};
    run.o = arena.floats_of(r.o.numel());
    if (info.has_lse()) run.lse = arena.floats_of(r.lse.numel());
    if (sel) run.selection = arena.ints_of(selection.numel());
    if (info.has_state) run.final_state = arena.floats_of(final_state.numel());
    run.stream = st;
    run.blas = blas_->get();
    run.sm_count = sm_count();
    run.kv_splits = options_.kv_splits;
    launch_forward(run);
    download(run.o, r.o, st);
    if (run.lse) download(run.lse, r.lse, st);
    if (sel) {
      download(run.selection, selection, st);
      r.selection = std::move(selection);
    }
    if (info.has_state) {
      download(run.final_state, final_state, st);
      r.final_state = std::move(final_state);
    }
    return r;
  }

  // bf16/fp16 on tensor cores. The fp32 host tensors are uploaded one at a time through one fp32
  // staging buffer and rounded on the device (RNE, as round_inputs does on the host), so the
  // upload moves what the fp32 path moves and no host time is spent converting. A finite input
  // that overflows the 16-bit format (fp16 beyond 65504) is refused after the fact, with the
  // tensor and index found on the host.
  RunResult run_tensor_core(const AttentionProblem& p, const Inputs& in, Arena& arena,
                            cudaStream_t st) {
    const ProblemShape& s = p.shape;
    RunResult r = softmax_result(s);
    const char* names[] = {"q", "k", "v"};
    int64_t largest = 0;
    for (const char* n : names) largest = std::max(largest, in.at(n).numel());
    float* staging = arena.floats_of(largest);
    int* overflow = arena.ints_of(3);
    check_cuda(cudaMemsetAsync(overflow, 0, 3 * sizeof(int), st), "cudaMemsetAsync overflow");
    uint16_t* bits[3];
    for (int t = 0; t < 3; ++t) {
      const Tensor& x = in.at(names[t]);
      bits[t] = arena.halves_of(x.numel());
      check_cuda(cudaMemcpyAsync(staging, x.data(), size_t(x.bytes()), cudaMemcpyHostToDevice, st),
                 "cudaMemcpyAsync host->device");
      launch_to_lowp(staging, bits[t], x.numel(), p.precision, overflow + t, st);
    }
    FlashTcArgs a = flash_tc_args_of(p);
    a.q = bits[0], a.k = bits[1], a.v = bits[2];
    a.o = arena.floats_of(r.o.numel());
    a.lse = arena.floats_of(r.lse.numel());
    launch_flash_attention_tc(a, st);
    download(a.o, r.o, st);
    download(a.lse, r.lse, st);
    // Drain the stream first, then read the flags synchronously: no copy can still be in flight
    // into this frame if anything throws.
    check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    int flags[3] = {0, 0, 0};
    check_cuda(cudaMemcpy(flags, overflow, sizeof flags, cudaMemcpyDeviceToHost),
               "cudaMemcpy overflow flags");
    for (int t = 0; t < 3; ++t) {
      if (!flags[t]) continue;
      const Tensor& x = in.at(names[t]);
      const int64_t at = first_unrepresentable(x, p.precision);
      std::ostringstream why;
      why << "input '" << names[t] << "' element " << at << " (" << (at >= 0 ? x.data()[at] : 0.0f)
          << ") overflows " << precision_name(p.precision) << ", which holds magnitudes below "
          << overflow_threshold(p.precision) << "; use --precision "
          << (p.precision == Precision::fp16 ? "bf16 or fp32" : "fp32");
      throw Error(why.str());
    }
    return r;
  }

  CudaOptions options_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<CublasHandle> blas_;
  std::unique_ptr<PagedDecoder> decoder_;  // declared last: its device mirror goes first
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

Support flash_fits(int64_t dk, const char* what, size_t smem_max) {
  if (dk > kFlashMaxHeadDim || flash_smem_bytes(int(dk)) > smem_max) {
    return Support::no(std::string(what) + " " + str(dk) +
                       " is too wide for the CUDA attention kernel (at most " +
                       str(kFlashMaxHeadDim) + " and the device's shared memory)");
  }
  return Support::yes();
}

std::string launch_forward(const DeviceRun& r) {
  const CudaVariant* cv = find_cuda_variant(r.problem.variant);
  if (!cv)
    throw Error("cuda backend: no kernels for " +
                std::string(variant_info(r.problem.variant).name));
  if (cv->launch) return cv->launch(r);
  const ProblemShape& s = r.problem.shape;
  FlashArgs a = flash_args_of(r.problem);
  a.q = r.inputs.at("q"), a.k = r.inputs.at("k"), a.v = r.inputs.at("v");
  a.o = r.o, a.lse = r.lse;
  const int splits = r.kv_splits > 0
                         ? r.kv_splits
                         : choose_kv_splits(int(s.batch), int(s.heads), int(s.q_len), int(s.kv_len),
                                            int(s.v_head_dim), r.sm_count);
  attention_forward(a, splits, r.stream);
  return "flash fp32, " + str(splits) + " key split" + (splits == 1 ? "" : "s");
}

const float* DeviceTensors::at(std::string_view name) const {
  if (const float* data = find(name)) return data;
  throw Error("cuda backend: no device tensor '" + std::string(name) + "'");
}

BackendInfo cuda_backend_info() {
  // The tensor-core variants and what each variant's kernels add to the shared paths.
  static const std::string summary = [] {
    std::string lowp, kernels;
    for (const CudaVariant& cv : cuda_variants()) {
      const VariantInfo& info = variant_info(cv.id);
      if (info.low_precision) {
        if (!lowp.empty()) lowp += '/';
        lowp += info.name;
      }
      if (!cv.summary.empty()) {
        if (!kernels.empty()) kernels += ", ";
        kernels += cv.summary;
      }
    }
    return "NVIDIA GPU, fp32 (and bf16/fp16 on tensor cores for " + lowp +
           ", --precision): " + kernels + "; paged-KV decode from a device mirror of the cache";
  }();
  return {"cuda", summary, [] { return device_available(); }, [] { return make_cuda_backend(); }};
}

void register_cuda_backend() {
  register_backend(cuda_backend_info());
}

}  // namespace attnscope::cuda
