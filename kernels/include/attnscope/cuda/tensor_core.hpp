// Which problems the cuda backend's bf16/fp16 tensor-core path takes: a pure function of the
// problem (no device query), so that its answers and reasons are testable on any machine.
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/problem.hpp"

namespace attnscope::cuda {

// Head dims the tensor-core kernel is instantiated for (Dk = Dv).
inline constexpr int kTensorCoreHeadDims[] = {64, 128};

// yes when the bf16/fp16 kernel computes `p`: precision bf16 or fp16, a variant with
// VariantInfo::low_precision, head_dim == v_head_dim, head_dim in kTensorCoreHeadDims. Otherwise
// no, with a sentence that names what is unsupported and what would work. Device limits (compute
// capability, shared memory, free memory) are the backend's supports() business on top of this.
Support tensor_core_support(const AttentionProblem& p);

}  // namespace attnscope::cuda
