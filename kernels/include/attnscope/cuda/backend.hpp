// The "cuda" backend: every variant on an NVIDIA GPU in fp32 (dense/SWA also in bf16/fp16 on tensor
// cores; fp32 accumulation throughout), behind the same Backend seam as the reference and CPU
// backends. Registered at startup by register_cuda_backend().
#pragma once

#include <memory>

#include "attnscope/backend.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::cuda {

struct CudaOptions {
  // Key splits of the attention core (dense, SWA, MLA): 0 chooses from the shape and the SM count
  // (split only when the query rows alone cannot fill the GPU); > 0 forces that many (tests).
  int kv_splits = 0;
};

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options = {});

// The registry entry: name "cuda", available when a device is (device_available()).
BackendInfo cuda_backend_info();

// Adds the entry to attnscope::backends(); idempotent. The CLI, GUI and tests call it once at
// startup in CUDA builds.
void register_cuda_backend();

}  // namespace attnscope::cuda
