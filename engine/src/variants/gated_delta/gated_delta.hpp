// The Gated DeltaNet module's parts (descriptor and cost in gated_delta.cpp, oracle in
// reference.cpp, fast path in cpu.cpp, decode step in decode.cpp).
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace reference {
RunResult gated_delta_run(const AttentionProblem&, const Inputs&, const CancelToken&);
void gated_delta_map_tile(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b,
                          int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);
}  // namespace reference
namespace cpu {
RunResult run_gated_delta(const Context& c);
RunResult decode_gated_delta(PagedKvCache& cache, const DecodeStep& step, int threads,
                             const CancelToken& cancel);
}  // namespace cpu
namespace variant_modules {
VariantInfo gated_delta();
}
}  // namespace attnscope
