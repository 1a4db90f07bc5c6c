// The one list of the variants the CUDA backend runs. Each variant's hooks live in its own host
// file; dense attention and sliding-window attention need none (the flash kernels take the
// window and sinks from KeyMask).
#include "cuda_variant.hpp"

namespace attnscope::cuda {

constexpr std::string_view kWaitForVerification =
    "it has no CUDA kernels yet: none are added before the CUDA backend has been verified on a "
    "GPU (docs/cuda.md); use --backend cpu";

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
      // Kernels for new variants wait until the existing ones have run on a GPU: an unverified
      // kernel beside unverified kernels would only add to what nobody has checked.
      {.id = VariantId::nsa, .refused = kWaitForVerification},
      {.id = VariantId::dsa, .refused = kWaitForVerification},
  };
  return table;
}

const CudaVariant* find_cuda_variant(VariantId id) {
  for (const CudaVariant& v : cuda_variants()) {
    if (v.id == id && v.refused.empty()) return &v;
  }
  return nullptr;
}

std::string_view cuda_refusal(VariantId id) {
  for (const CudaVariant& v : cuda_variants()) {
    if (v.id == id) return v.refused;
  }
  return "it has no CUDA kernels";
}

}  // namespace attnscope::cuda
