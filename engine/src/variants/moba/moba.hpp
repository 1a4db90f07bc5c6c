// The MoBA module's parts (descriptor and cost in moba.cpp, oracle in reference.cpp, fast path in
// cpu.cpp, decode routing in route.cpp).
#pragma once

#include <span>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace reference {
RunResult moba_run(const AttentionProblem&, const Inputs&, const CancelToken&);
void moba_map_tile(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b, int64_t h,
                   int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);
}  // namespace reference
namespace cpu {
RunResult run_moba(const Context& c);
std::vector<int64_t> moba_route(const PagedKvCache& cache, const AttentionProblem& p,
                                std::span<const int32_t> pages, std::span<const float> means,
                                const float* q, int64_t g, int64_t L);
}  // namespace cpu
namespace variant_modules {
VariantInfo moba();
}  // namespace variant_modules
}  // namespace attnscope
