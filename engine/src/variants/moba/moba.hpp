// The MoBA module's parts (descriptor and cost in moba.cpp, oracle in reference.cpp, fast path in
// cpu.cpp, decode routing in route.cpp).
#pragma once

#include <span>
#include <vector>

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(moba)

namespace cpu {
std::vector<int64_t> moba_route(const PagedKvCache& cache, const AttentionProblem& p,
                                std::span<const int32_t> pages, std::span<const float> means,
                                const float* q, int64_t g, int64_t L);
}  // namespace cpu

}  // namespace attnscope
