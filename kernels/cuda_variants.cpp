// The one list of the variants the CUDA backend runs. Each variant's hooks live in its own host
// file; dense attention and sliding-window attention need none (the flash kernels take the
// window and sinks from KeyMask).
#include "cuda_variant.hpp"

namespace attnscope::cuda {

CudaVariant moba_cuda_variant();         // moba_host.cpp
CudaVariant mla_cuda_variant();          // mla_host.cpp
CudaVariant gated_delta_cuda_variant();  // gated_delta_host.cpp

const std::vector<CudaVariant>& cuda_variants() {
  static const std::vector<CudaVariant> table = {
      {.id = VariantId::dense, .summary = "tiled online-softmax attention with split-KV decode"},
      {.id = VariantId::swa},
      moba_cuda_variant(),
      mla_cuda_variant(),
      gated_delta_cuda_variant(),
  };
  return table;
}

const CudaVariant* find_cuda_variant(VariantId id) {
  for (const CudaVariant& v : cuda_variants()) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

}  // namespace attnscope::cuda
