// The MLA module's parts (descriptor in mla.cpp, oracle in reference.cpp, fast paths in cpu.cpp
// and decode.cpp).
#pragma once

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(mla)

namespace cpu {
RunResult decode_mla(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);
}  // namespace cpu

}  // namespace attnscope
