// The MLA module's parts (descriptor in mla.cpp, oracle in reference.cpp, fast paths in cpu.cpp
// and decode.cpp).
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace reference {
RunResult mla_run(const AttentionProblem&, const Inputs&, const CancelToken&);
void mla_map_tile(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b, int64_t h,
                  int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);
}  // namespace reference
namespace cpu {
RunResult run_mla(const Context& c);
RunResult decode_mla(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);
}  // namespace cpu
namespace variant_modules {
VariantInfo mla();
}
}  // namespace attnscope
