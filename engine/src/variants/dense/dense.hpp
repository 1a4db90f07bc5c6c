// The dense module's entry points that other softmax modules reuse: the masked-softmax reference
// (its KeyMask covers windows and sinks) and the cpu flash path.
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace reference {
RunResult dense_run(const AttentionProblem&, const Inputs&, const CancelToken&);
void dense_map_tile(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b, int64_t h,
                    int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);
}  // namespace reference
namespace cpu {
RunResult run_dense(const Context& c);
}
namespace variant_modules {
VariantInfo dense();
}
}  // namespace attnscope
