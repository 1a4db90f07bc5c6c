// The Gated DeltaNet module's parts (descriptor and cost in gated_delta.cpp, oracle in
// reference.cpp, fast path in cpu.cpp, decode step in decode.cpp).
#pragma once

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(gated_delta)

namespace cpu {
RunResult decode_gated_delta(PagedKvCache& cache, const DecodeStep& step, int threads,
                             const CancelToken& cancel);
}  // namespace cpu

}  // namespace attnscope
