// What the CUDA backend needs of a variant beyond the engine's descriptor (variant.hpp): the hooks
// a variant's own host file (kernels/<variant>_host.cpp) fills in, listed once in
// cuda_variants.cpp. The shared code (run, decode, map, timing) asks the descriptor's capabilities
// and calls these hooks; a null hook means the shared path serves the variant.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/variant.hpp"
#include "cuda_host.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {

// Device tensors of one call, by the names of the problem's TensorSpecs.
class DeviceTensors {
 public:
  void add(std::string name, const float* data) { entries_.emplace_back(std::move(name), data); }
  // nullptr when absent (an optional input nobody gave).
  const float* find(std::string_view name) const {
    for (const auto& [n, data] : entries_) {
      if (n == name) return data;
    }
    return nullptr;
  }
  // Throws Error when absent.
  const float* at(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, const float*>> entries_;
};

// One forward pass on device-resident tensors: CudaBackend::run and time_run queue the same one.
struct DeviceRun {
  const AttentionProblem& problem;
  const DeviceTensors& inputs;  // the problem's input tensors in fp32
  const CancelToken& cancel;
  float* o = nullptr;            // [B, H, Lq, Dv]
  float* lse = nullptr;          // [B, H, Lq] when the variant has an lse
  int32_t* selection = nullptr;  // [B, H, Lq, top_k] when the problem has a block selection
  // State variants: the state the recurrence starts from ([B, H, Dk, Dv]; null: the input's or
  // zeros), and the state it ends in.
  const float* initial_state = nullptr;
  float* final_state = nullptr;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;  // pedantic fp32, bound to stream
  int sm_count = 1;
  int kv_splits = 0;  // > 0 forces the attention core's key splits (CudaOptions); 0 chooses
};

// A softmax decode step over the device mirror of a paged cache (cuda_decode.cpp and its timing):
// `args` holds the pages, tables, lengths, widths and mask of the step; the step attends its
// queries into `o`.
struct PagedRun {
  const AttentionProblem& problem;  // the cache's, in decode form
  const DeviceTensors& inputs;      // the step's tensors except the cached ones (B rows, L = 1)
  const CancelToken& cancel;
  PagedAttentionArgs args;  // everything but q and o
  int splits = 1;
  int64_t max_keys = 0;      // visible keys of the longest row
  float* o = nullptr;        // [B, H, Dv]
  float* scratch = nullptr;  // CudaVariant::paged_scratch_floats floats
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
};

// A decode step's block selection, chosen from the cache's block means.
struct PagedSelect {
  const AttentionProblem& problem;  // the cache's
  const DecodeStep& step;
  const std::vector<int32_t>& lengths;  // per row: its sequence's tokens, the new one included
  BlockSelection selection;
  const float* q = nullptr;                 // [B, H, Dk] on the device
  const int32_t* device_lengths = nullptr;  // lengths on the device
  // Device block means of a sequence ([blocks][Hkv][Dk]); null while no block is complete.
  std::function<const float*(int64_t sequence)> block_means;
  Arena& arena;
  int32_t* out = nullptr;  // [B, H, top_k]: ascending, own block last, -1 padding
  cudaStream_t stream = nullptr;
};

// How the map probe forms one head's scores on the device: the region's keys and a band's
// queries as rows of width() floats whose dot product is the score before scaling. Buffers are
// allocated in allocate(), after the memory check, and must outlive every queued copy.
class MapScores {
 public:
  virtual ~MapScores() = default;
  virtual int64_t width() const = 0;
  // Device floats it holds beyond the keys and one band of queries.
  virtual double extra_floats(int64_t band_rows) const = 0;
  virtual void allocate(int64_t band_rows) = 0;
  // keys [cols, width()] for key columns [col0, col0 + cols).
  virtual void upload_keys(float* keys, int64_t col0, int64_t cols, cudaStream_t stream) = 0;
  // queries [n, width()] for query rows [row, row + n).
  virtual void upload_queries(float* queries, int64_t row, int64_t n, cudaStream_t stream) = 0;
};

// How device timing draws a generated input: a * N(0, 1) + b (normal) or uniform in [a, b).
struct InputFill {
  bool normal = true;
  float a = 1.0f, b = 0.0f;
};

struct CudaVariant {
  VariantId id;
  // What its kernels do, for the backend's summary; empty when the shared paths are all it uses.
  std::string_view summary = {};
  // Non-empty for a variant the backend has no kernels for: why, as supports() says it. Such an
  // entry has no hooks and find_cuda_variant skips it.
  std::string_view refused = {};

  // Full-sequence runs.
  // Limits of its kernels on a device with smem_max bytes of shared memory per block. Null: the
  // flash kernel's head_dim limit.
  Support (*supports)(const AttentionProblem& p, size_t smem_max) = nullptr;
  // Device floats of its workspaces beyond inputs and outputs, a rough upper bound. Null: the
  // split-KV partials of the flash kernel.
  double (*workspace_floats)(const AttentionProblem& p) = nullptr;
  // Queues the forward pass; returns which kernels ran ("flash fp32, 2 key splits"). Null: flash
  // attention over q, k, v with the problem's KeyMask.
  std::string (*launch)(const DeviceRun& run) = nullptr;
  // Inputs device timing generates. Null: every input N(0, 1).
  InputFill (*input_fill)(const AttentionProblem& p, std::string_view name) = nullptr;

  // Decode through the paged KV cache.
  // Limits of its decode kernels. Null: the paged kernel's limits for the cache layout.
  Support (*decode_supports)(const AttentionProblem& cache_problem, size_t smem_max) = nullptr;
  // Block selection variants: queues the step's selection into select.out.
  void (*decode_select)(const PagedSelect& select) = nullptr;
  // The step's attention over the pages. Null: q · k over the pages, straight into o.
  void (*paged_step)(const PagedRun& run) = nullptr;
  int64_t (*paged_scratch_floats)(const AttentionProblem& p, int64_t batch) = nullptr;
  std::string_view paged_path = {};  // for timing; empty: "paged attention fp32"

  // Attention maps of softmax variants. Null: q · k of the q and k inputs.
  std::unique_ptr<MapScores> (*map_scores)(const AttentionProblem& p, const Inputs& in,
                                           int64_t batch, int64_t head) = nullptr;
};

// The variants the CUDA backend runs (cuda_variants.cpp).
const std::vector<CudaVariant>& cuda_variants();
// nullptr for a variant the backend does not run.
const CudaVariant* find_cuda_variant(VariantId id);
// Why the backend does not run the variant ("" when it does): its entry's `refused`.
std::string_view cuda_refusal(VariantId id);

// ---- shared paths the hooks build on -------------------------------------------------------

// Whether the flash kernel takes keys dk wide on this device ("<what> <dk> is too wide ...").
Support flash_fits(int64_t dk, const char* what, size_t smem_max);
// The forward pass through the variant's launch hook or the shared flash path (cuda_backend.cpp).
std::string launch_forward(const DeviceRun& run);

// Whether the paged kernel takes keys dk and values dv wide on this device.
Support paged_fits(int64_t dk, int64_t dv, bool v_from_k, const char* what, size_t smem_max);
// A step tensor with the shape decode_step checked (checked again: decode may be called directly).
const Tensor& step_input(const DecodeStep& step, const std::string& name, const Shape& shape);
// The attention over the pages through the variant's paged_step hook or the shared one
// (cuda_decode.cpp).
void paged_forward(const PagedRun& run);

}  // namespace attnscope::cuda
