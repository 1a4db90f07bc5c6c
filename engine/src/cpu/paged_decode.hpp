// The CPU backend's paged-KV decode (decode.hpp's Backend::decode contract).
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/decode.hpp"

namespace attnscope::cpu {

RunResult decode_paged(PagedKvCache& cache, const DecodeStep& step, int threads,
                       const CancelToken& cancel);

}  // namespace attnscope::cpu
