// The attention-map probe: recompute any region of P = softmax(scores) from a run's lse, in tiles,
// and pool it to a requested resolution. Never holds q_len x kv_len; a 128K map is one more pass.
#pragma once

#include <cstdint>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/map_request.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

// Pooled map [out_rows, out_cols]. For softmax variants entries are exact probabilities
// P_ij = exp(s_ij * scale - lse_i) (masked entries 0); for Gated DeltaNet the implicit attention
// (the weight of v_j in o_i). `result` must come from running `problem` on `inputs`.
Tensor attention_map(const AttentionProblem& problem, const Inputs& inputs, const RunResult& result,
                     const MapRequest& request, const CancelToken& cancel = {});

// Checks a request against the problem and the run's result exactly as attention_map does
// (the same Errors: indices out of range, an empty or outside region, a stale lse, a MoBA result
// without its selection) and resolves it: "to the end" filled in, the output size clamped.
// Backends that pool elsewhere (Backend::attention_map overrides) start here.
MapRegion resolve_map_region(const AttentionProblem& problem, const RunResult& result,
                             const MapRequest& request);
// The same rules without a run: lets a caller refuse a bad request before computing anything.
MapRegion resolve_map_request(const AttentionProblem& problem, const MapRequest& request);

// One unpooled tile, rows [i0, i1) x cols [j0, j1), row-major; the building block of the above.
void attention_tile(const AttentionProblem& problem, const Inputs& inputs, const RunResult& result,
                    int64_t batch, int64_t head, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                    float* out);

// DSA's lightning-indexer scores I[i, s] = Di^-1/2 sum_j w_idx[i, j] ReLU(q_idx[i, j] . k_idx[s])
// for rows [i0, i1) and keys [j0, j1) of one sequence, row-major; NaN for keys after the row's
// position (not eligible). Rounded to e4m3 first with index_fp8, as the run's indexer is. fp32
// (what the explorer draws; the run ranks near ties in float64). Throws Error for other variants.
void index_score_tile(const AttentionProblem& problem, const Inputs& inputs, int64_t batch,
                      int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);

}  // namespace attnscope
