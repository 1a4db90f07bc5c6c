// The CUDA backend's paged-KV decode (Backend::decode, decode.hpp): a device mirror of a
// PagedKvCache's page pool that uploads only the pages written since it last looked, and the
// per-variant decode step over it (dense/GQA/MQA/SWA, MoBA, MLA absorbed, Gated DeltaNet).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "attnscope/backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"

namespace attnscope::cuda {

// Whether a cache's model can decode on the current device (the kernels' head-dim and
// shared-memory limits), and why not.
Support paged_decode_support(const AttentionProblem& cache_problem);

struct DecodeContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;  // pedantic fp32 (MLA's projections)
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
  // return o [B, H, 1, Dv], lse [B, H, 1] (+ MoBA's selection [B, H, 1, top_k] when
  // probes.selection); Gated DeltaNet rewrites cache.state(seq) with one recurrent step and
  // returns o (decode_step advances the length). Counters from decode_cost; backend "cuda".
  RunResult decode(PagedKvCache& cache, const DecodeStep& step, const Probes& probes,
                   const CancelToken& cancel, const DecodeContext& ctx);

 private:
  struct Mirror;
  std::unique_ptr<Mirror> mirror_;
};

}  // namespace attnscope::cuda
