// The "cuda" Backend: checks inputs, copies host tensors to device buffers, runs the variant's
// kernels on one stream (checking the CancelToken between launches) and copies results back.
// Decode through the paged KV cache goes to PagedDecoder (cuda_decode.cpp), the device peaks to
// measure_cuda_peak (peak.cu).
#include "attnscope/cuda/backend.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <deque>
#include <sstream>
#include <string>

#include "attnscope/cost.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/mask.hpp"
#include "cuda_check.hpp"
#include "cuda_decode.hpp"
#include "cuda_map.hpp"
#include "launchers.hpp"
#include "peak.hpp"

namespace attnscope::cuda {
namespace {

// Every device allocation of one run. Declared before the SyncGuard in run(), so that on any exit
// (error, cancellation) the stream is drained before the memory its kernels use is freed.
struct Arena {
  std::deque<DeviceBuffer<float>> floats;
  std::deque<DeviceBuffer<int32_t>> ints;
  std::deque<DeviceBuffer<uint16_t>> halves;  // bf16/fp16 bit patterns

  float* upload(const Tensor& t, cudaStream_t s) {
    floats.emplace_back(t.numel()).upload(t.data(), s);
    return floats.back().get();
  }
  float* floats_of(int64_t n) { return floats.emplace_back(n).get(); }
  int32_t* ints_of(int64_t n) { return ints.emplace_back(n).get(); }
  uint16_t* halves_of(int64_t n) { return halves.emplace_back(n).get(); }
};

struct SyncGuard {
  cudaStream_t s;
  ~SyncGuard() { (void)cudaStreamSynchronize(s); }
};

void download(const float* dev, Tensor& host, cudaStream_t s) {
  if (host.numel() > 0) {
    check_cuda(cudaMemcpyAsync(host.data(), dev, size_t(host.bytes()), cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync device->host");
  }
}

int current_device_attribute(cudaDeviceAttr attr, const char* what) {
  int device = 0, value = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&value, attr, device), what);
  return value;
}

// Device bytes a run needs: inputs, outputs and the largest workspaces (rough upper bound).
double device_bytes(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  double n = 0;
  for (const TensorSpec& spec : variant_info(p.variant).inputs(p)) {
    double numel = 1;
    for (int64_t d : spec.shape) numel *= double(d);
    n += numel;
  }
  const double rows = double(s.batch) * s.heads * s.q_len;
  n += rows * (s.v_head_dim + 1);  // o, lse
  switch (p.variant) {
    case VariantId::dense:
    case VariantId::swa:
      n += 64 * rows * (s.v_head_dim + 1);  // split-KV partials, at most 64 splits
      break;
    case VariantId::moba:
      n += double(s.batch) * s.kv_heads * s.kv_len * s.head_dim + rows * p.moba.top_k;
      break;
    case VariantId::mla: {
      const double dl = double(p.mla.kv_lora_rank + p.mla.rope_dim);
      if (p.mla.absorbed) {
        n += rows * dl + double(s.batch) * s.kv_len * dl + 65 * rows * (p.mla.kv_lora_rank + 1);
      } else {
        n += double(s.batch) * s.heads * s.kv_len * (s.head_dim + s.v_head_dim) +
             64 * rows * (s.v_head_dim + 1);
      }
      break;
    }
    case VariantId::gated_delta:
      n += 2 * rows * s.head_dim + double(s.batch) * s.heads * s.head_dim * s.v_head_dim;
      break;
  }
  return 4.0 * n;
}

std::string str(int64_t x) {
  return std::to_string(x);
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
    RunResult r;
    switch (p.variant) {  // the backend's own dispatch over the registry's variants
      case VariantId::dense:
      case VariantId::swa:
        r = p.precision == Precision::fp32 ? run_dense(p, in, arena, s)
                                           : run_dense_tensor_core(p, in, arena, s);
        break;
      case VariantId::moba:
        r = run_moba(p, in, arena, s, cancel);
        break;
      case VariantId::mla:
        r = run_mla(p, in, arena, s, cancel);
        break;
      case VariantId::gated_delta:
        r = run_gated_delta(p, in, arena, s, cancel);
        break;
    }
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

  // Softmax maps are recomputed and pooled on the device (cuda_map.cpp); Gated DeltaNet's, and
  // any map when no device is usable, on the host.
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
    for (int64_t d : {s.batch, s.heads, s.kv_heads, s.q_len, s.kv_len, s.head_dim, s.v_head_dim}) {
      if (d > INT_MAX / 2) return Support::no("a dimension above 2^30 is beyond the CUDA kernels");
    }
    if (s.batch > 65535 || s.heads > 65535) {
      return Support::no("batch and heads must each be at most 65535 on CUDA (grid limits)");
    }
    const size_t smem_max = max_shared_memory_per_block();
    auto flash_fits = [&](int64_t dk, const char* what) -> Support {
      if (dk > kFlashMaxHeadDim || flash_smem_bytes(int(dk)) > smem_max) {
        return Support::no(std::string(what) + " " + str(dk) +
                           " is too wide for the CUDA attention kernel (at most " +
                           str(kFlashMaxHeadDim) + " and the device's shared memory)");
      }
      return Support::yes();
    };
    Support shape = Support::yes();
    if (p.precision != Precision::fp32) {
      // bf16/fp16 go to the tensor-core kernel only; it never falls back to fp32 silently.
      if (Support tc = tensor_core_support(p); !tc.ok) return tc;
      const int major = current_device_attribute(cudaDevAttrComputeCapabilityMajor,
                                                 "cudaDevAttrComputeCapabilityMajor");
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
    switch (p.variant) {
      case VariantId::dense:
      case VariantId::swa:
        shape = flash_fits(s.head_dim, "head_dim");
        break;
      case VariantId::mla:
        shape = p.mla.absorbed ? flash_fits(p.mla.kv_lora_rank + p.mla.rope_dim,
                                            "absorbed MLA key width kv_lora_rank + rope_dim")
                               : flash_fits(s.head_dim, "head_dim");
        break;
      case VariantId::moba: {
        const int64_t blocks = (s.kv_len + p.moba.block_size - 1) / p.moba.block_size;
        if (s.v_head_dim > kMobaMaxDv) {
          shape = Support::no("MoBA on CUDA handles v_head_dim up to 256 (got " +
                              str(s.v_head_dim) + ")");
        } else if (p.moba.top_k - 1 > kMobaMaxRanked && p.moba.top_k < blocks) {
          shape = Support::no("MoBA on CUDA ranks at most 32 past blocks per query: use top_k <= " +
                              str(kMobaMaxRanked + 1) + " or top_k >= the number of blocks (" +
                              str(blocks) + ")");
        }
        break;
      }
      case VariantId::gated_delta:
        if (s.head_dim > kGdnMaxHeadDim) {
          shape = Support::no("Gated DeltaNet on CUDA handles head_dim up to 256 (got " +
                              str(s.head_dim) + ")");
        } else if (!p.gdn.recurrent && p.gdn.chunk_size > kGdnMaxChunk) {
          shape =
              Support::no("Gated DeltaNet's chunked CUDA kernel handles chunk_size up to 64 (got " +
                          str(p.gdn.chunk_size) + "); use 64 or the recurrent form");
        } else if (!p.gdn.recurrent &&
                   gdn_chunk_smem_bytes(int(s.head_dim), int(p.gdn.chunk_size)) > smem_max) {
          shape = Support::no("Gated DeltaNet chunk does not fit in the device's shared memory");
        }
        break;
    }
    if (!shape.ok) return shape;
    size_t free_bytes = 0, total_bytes = 0;
    check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const double need = device_bytes(p);
    if (need > 0.9 * double(free_bytes)) {
      return Support::no("needs about " + str(int64_t(need / (1 << 20))) +
                         " MiB of device memory, " + str(int64_t(free_bytes >> 20)) + " MiB free");
    }
    return Support::yes();
  }

  int kv_splits(const ProblemShape& s) const {
    if (options_.kv_splits > 0) return options_.kv_splits;
    return choose_kv_splits(int(s.batch), int(s.heads), int(s.q_len), int(s.kv_len),
                            int(s.v_head_dim), sm_count());
  }
  static int sm_count() {
    return current_device_attribute(cudaDevAttrMultiProcessorCount,
                                    "cudaDevAttrMultiProcessorCount");
  }

  static RunResult softmax_result(const ProblemShape& s) {
    RunResult r;
    r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
    r.lse = Tensor({s.batch, s.heads, s.q_len});
    return r;
  }

  RunResult run_dense(const AttentionProblem& p, const Inputs& in, Arena& arena, cudaStream_t st) {
    const ProblemShape& s = p.shape;
    RunResult r = softmax_result(s);
    FlashArgs a = flash_args_of(p);
    a.q = arena.upload(in.at("q"), st);
    a.k = arena.upload(in.at("k"), st);
    a.v = arena.upload(in.at("v"), st);
    a.o = arena.floats_of(r.o.numel());
    a.lse = arena.floats_of(r.lse.numel());
    attention_forward(a, kv_splits(s), st);
    download(a.o, r.o, st);
    download(a.lse, r.lse, st);
    return r;
  }

  // bf16/fp16 on tensor cores. The fp32 host tensors are uploaded one at a time through one fp32
  // staging buffer and rounded on the device (RNE, as round_inputs does on the host), so the
  // upload moves what the fp32 path moves and no host time is spent converting. A finite input
  // that overflows the 16-bit format (fp16 beyond 65504) is refused after the fact, with the
  // tensor and index found on the host.
  RunResult run_dense_tensor_core(const AttentionProblem& p, const Inputs& in, Arena& arena,
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

  RunResult run_moba(const AttentionProblem& p, const Inputs& in, Arena& arena, cudaStream_t st,
                     const CancelToken& cancel) {
    const ProblemShape& s = p.shape;
    RunResult r = softmax_result(s);
    IndexTensor selection({s.batch, s.heads, s.q_len, p.moba.top_k}, -1);
    MobaArgs a = moba_args_of(p);
    a.q = arena.upload(in.at("q"), st);
    a.k = arena.upload(in.at("k"), st);
    a.v = arena.upload(in.at("v"), st);
    a.o = arena.floats_of(r.o.numel());
    a.lse = arena.floats_of(r.lse.numel());
    a.selection = arena.ints_of(selection.numel());
    moba_forward(a, st, cancel);
    download(a.o, r.o, st);
    download(a.lse, r.lse, st);
    if (selection.numel() > 0) {
      check_cuda(cudaMemcpyAsync(selection.data(), a.selection, size_t(selection.bytes()),
                                 cudaMemcpyDeviceToHost, st),
                 "cudaMemcpyAsync selection");
    }
    r.selection = std::move(selection);
    return r;
  }

  RunResult run_mla(const AttentionProblem& p, const Inputs& in, Arena& arena, cudaStream_t st,
                    const CancelToken& cancel) {
    const ProblemShape& s = p.shape;
    RunResult r = softmax_result(s);
    MlaArgs a = mla_args_of(p, sm_count(), options_.kv_splits);
    a.q = arena.upload(in.at("q"), st);
    a.c_kv = arena.upload(in.at("c_kv"), st);
    a.k_rope = arena.upload(in.at("k_rope"), st);
    a.w_uk = arena.upload(in.at("w_uk"), st);
    a.w_uv = arena.upload(in.at("w_uv"), st);
    a.o = arena.floats_of(r.o.numel());
    a.lse = arena.floats_of(r.lse.numel());
    mla_forward(a, blas_->get(), st, cancel);
    download(a.o, r.o, st);
    download(a.lse, r.lse, st);
    return r;
  }

  RunResult run_gated_delta(const AttentionProblem& p, const Inputs& in, Arena& arena,
                            cudaStream_t st, const CancelToken& cancel) {
    const ProblemShape& s = p.shape;
    RunResult r;
    r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
    Tensor final_state({s.batch, s.heads, s.head_dim, s.v_head_dim});
    GdnArgs a = gdn_args_of(p);
    a.q = arena.upload(in.at("q"), st);
    a.k = arena.upload(in.at("k"), st);
    a.v = arena.upload(in.at("v"), st);
    a.g = arena.upload(in.at("g"), st);
    a.beta = arena.upload(in.at("beta"), st);
    a.initial_state = in.has("initial_state") ? arena.upload(in.at("initial_state"), st) : nullptr;
    a.o = arena.floats_of(r.o.numel());
    a.final_state = arena.floats_of(final_state.numel());
    gated_delta_forward(a, st, cancel);
    download(a.o, r.o, st);
    download(a.final_state, final_state, st);
    r.final_state = std::move(final_state);
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

BackendInfo cuda_backend_info() {
  return {"cuda",
          "NVIDIA GPU, fp32 (and bf16/fp16 on tensor cores for dense/SWA, --precision): tiled "
          "online-softmax attention with split-KV decode, MoBA gate/top-k "
          "and block attention, MLA naive (cuBLAS) and absorbed, Gated DeltaNet recurrent and "
          "chunked; paged-KV decode from a device mirror of the cache",
          [] { return device_available(); }, [] { return make_cuda_backend(); }};
}

void register_cuda_backend() {
  register_backend(cuda_backend_info());
}

}  // namespace attnscope::cuda
