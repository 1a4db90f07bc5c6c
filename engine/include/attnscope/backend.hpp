// The seam every implementation sits behind: reference, fast CPU, CUDA.
// A backend says whether it supports a problem (and why not), then runs it to a RunResult value.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnscope/cancel.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/map_pyramid.hpp"
#include "attnscope/map_request.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

struct Counters {
  double flops = 0;           // from the cost model, for the work the backend actually does
  double bytes = 0;           // minimal bytes moved (cost model)
  int64_t visible_pairs = 0;  // (query, key) pairs that entered a softmax / the recurrence
};

struct RunResult {
  Tensor o;                              // [B, H, Lq, Dv]
  Tensor lse;                            // [B, H, Lq] natural log; empty for Gated DeltaNet
  std::optional<IndexTensor> selection;  // MoBA: [B, H, Lq, top_k] block ids, ascending, -1 pad
  std::optional<Tensor> final_state;     // Gated DeltaNet: [B, H, Dk, Dv]
  // A variant's own outputs, by the names --out writes them under (VariantInfo::extra_outputs):
  // NSA's lse_cmp/lse_slc/lse_swa and its group-shared block selection [B, Hkv, Lq, S], DSA's
  // selected key positions [B, Lq, top_k]. Kept apart from `selection`, whose layout
  // ([B, H, Lq, top_k] block ids) the block-selection views read.
  TensorMap extra;
  std::map<std::string, IndexTensor, std::less<>> extra_index;
  Counters counters;
  double seconds = 0;  // wall time of run() itself
  // Where the time of run() went, for a variant with distinct stages (DSA: "indexer",
  // "attention"), in seconds; empty otherwise.
  std::vector<std::pair<std::string, double>> phases;
  std::string backend;  // which backend produced it
  // The map overview pooled during the run (Probes::pyramid), when the backend's path makes one
  // (the CPU flash tiles); null otherwise. Shared: a RunResult is copied around the GUI.
  std::shared_ptr<const MapPyramid> pyramid;
};

struct Support {
  bool ok = true;
  std::string why_not;  // filled when !ok: what is unsupported and what would work
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
};

// A host backend's answer for the problem's precision: fp32 is fine, bf16/fp16 is a device's
// ("<backend> computes in <computes>; bf16 needs the cuda backend ...").
Support host_fp32_support(const AttentionProblem& problem, std::string_view backend,
                          std::string_view computes);

// What a run captures beyond o/lse. Attention maps are computed afterwards from lse (probes.hpp).
struct Probes {
  bool selection = true;   // MoBA's block selection
  PyramidRequest pyramid;  // the attention map's overview, pooled while the scores exist
};

class PagedKvCache;
struct DecodeStep;

// What a backend measures of its device for the roofline: a large GEMM and a large copy.
struct DevicePeak {
  std::string backend;      // "cpu", "cuda", …
  std::string device;       // Backend::device() at measurement time (the cache key with backend)
  double gflops = 0;        // fp32 GEMM
  double gbps = 0;          // streaming copy (read + write bytes)
  std::string gemm;         // what was measured: "Eigen SGEMM 1024^3 on 2 threads"
  std::string copy;         // "triad a = b + s*c, 3 x 256 MiB, 2 threads"
  double seconds = 0;       // how long the calibration took
  std::string measured_at;  // ISO 8601 UTC
  bool cached = false;      // read back from the per-device cache rather than measured now
  // A second bandwidth roof: streaming over a working set that fits in the last-level cache, which
  // DRAM bandwidth does not bound (0 when the device has no such measurement, e.g. CUDA).
  double cache_gbps = 0;
  int64_t cache_bytes = 0;  // the last-level cache's size: working sets up to it get cache_gbps
  std::string cache_copy;   // "triad a = b + s*c, 3 x 5 MiB in a 32 MiB LLC, 2 threads"
  // False when every try saw contention (other work kept the calibration's threads waiting for a
  // CPU): the numbers are then what a busy machine did, never cached as the device's roof.
  bool reliable = true;
  std::string contention;  // what was seen: run-queue wait, load average, retries
  std::string cpu_model;   // the host CPU (the cache key with backend and device)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "reference", "cpu", "cuda"
  virtual std::string device() const = 0;     // human description of where it runs
  virtual Support supports(const AttentionProblem& problem) const = 0;
  // Validates problem and inputs first (Error on anything wrong), then computes.
  virtual RunResult run(const AttentionProblem& problem, const Inputs& inputs, const Probes& probes,
                        const CancelToken& cancel) = 0;

  // Decode through the paged KV cache (decode.hpp): the step's new tokens are already appended to
  // `cache` (softmax variants); attend each row's query over its sequence's pages. Gated DeltaNet
  // advances the cached state with the step's k, v, g, beta. Callers use decode_step(), which
  // checks and appends first. The base implementation throws Error naming the backend.
  virtual RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                           const CancelToken& cancel);

  // Measures this backend's compute peak and memory bandwidth (seconds, not minutes). Callers use
  // device_peak() (calibrate.hpp), which caches the result per device. The base implementation
  // throws Error naming the backend.
  virtual DevicePeak measure_peak(const CancelToken& cancel);

  // The attention-map probe (probes.hpp) for a result this backend produced: the pooled map of
  // one head over a region. Backends override it to recompute tiles where their data lives (the
  // CUDA backend pools on the device); every override returns what attention_map would, within
  // fp32 rounding, and throws the same Errors. The base implementation is attention_map itself.
  virtual Tensor attention_map(const AttentionProblem& problem, const Inputs& inputs,
                               const RunResult& result, const MapRequest& request,
                               const CancelToken& cancel);
};

// Checks problem.validate(), then every input tensor against the variant's spec (presence, shape,
// finiteness). Throws Error naming the first problem found. Every backend calls this first.
void check_inputs(const AttentionProblem& problem, const Inputs& inputs);

// Checks that a run's outputs (o, final_state) are finite, throwing Error otherwise. Softmax
// outputs are averages of v and stay finite once check_inputs passed; Gated DeltaNet's state can
// still overflow fp32 (the delta rule amplifies it when beta·|k|² > 2), and a NaN answer must not
// pass for one. Every backend calls this before returning a result.
void check_outputs_finite(const AttentionProblem& problem, const RunResult& result);

}  // namespace attnscope
