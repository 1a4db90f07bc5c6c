// The CUDA backend's paged-KV decode (Backend::decode, decode.hpp): a device mirror of a
// PagedKvCache's page pool that uploads only the pages written since it last looked, and the
// decode step over it: the paged attention over K/V or latent pages (a variant's block selection
// and projections through its CudaVariant hooks), or a state variant's one-token forward pass.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "attnscope/backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/variant.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {

// Whether a cache's model can decode on the current device (the kernels' head-dim and
// shared-memory limits), and why not.
Support paged_decode_support(const AttentionProblem& cache_problem);

// The paged attention's widths and page layout for a cache (CacheLayout::kv: q · k per kv head;
// latent: one shared [latent | rope] key, the latent as the value).
void set_paged_layout(PagedAttentionArgs& a, const CacheSpec& cache, int page_size,
                      int64_t page_floats);
// Keys a decode row sees when its sequence holds `length` tokens, under a window and sinks (0:
// every key).
int64_t paged_visible_keys(int64_t length, int64_t window, int64_t sinks);

struct DecodeContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;  // pedantic fp32 (a variant's projections)
  int sm_count = 1;
  int kv_splits = 0;  // > 0 forces that many key splits (tests); 0 chooses by shape
};

// Owns the device mirror of the last cache it decoded (one at a time: a different cache, or one
// whose pages no longer match, is mirrored afresh).
class PagedDecoder {
 public:
  PagedDecoder();
  ~PagedDecoder();
  PagedDecoder(const PagedDecoder&) = delete;
  PagedDecoder& operator=(const PagedDecoder&) = delete;

  // The Backend::decode contract: softmax variants find the step's tokens already appended and
  // return o [B, H, 1, Dv], lse [B, H, 1] (+ the block selection [B, H, 1, top_k] when
  // probes.selection); state variants rewrite cache.state(seq) with one recurrent step and return
  // o (decode_step advances the length). Counters from decode_cost; backend "cuda".
  RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                   const CancelToken& cancel, const DecodeContext& ctx);

 private:
  struct Mirror;
  std::unique_ptr<Mirror> mirror_;
};

}  // namespace attnscope::cuda
