// The forward's matrix products through OpenBLAS's sgemm. Measured on the 2-core development VM
// for SmolLM2-135M's shapes at L = 2048 (best of 25 runs, quiet machine), OpenBLAS on its own two
// threads ran at ~195-205 GFLOP/s on every shape, Eigen split over the same two threads at 80-165
// (q/k/v/o and gate/up 2.4x slower, down 1.2x, the 49152-wide LM head 1.4x). Splitting rows over
// the engine's pool with single-threaded OpenBLAS measured the same as OpenBLAS's own threads.
#pragma once

#include <cstdint>

namespace attnscope::forward_detail {

// y[M, N] = x[M, K] · Wᵀ (+ y when accumulate), W [N, K] row-major: nn.Linear's layout.
void linear(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y,
            bool accumulate = false);
// y[M, N] = x[M, K] · W (+ y when accumulate), W [K, N] row-major: GPT-2's Conv1D layout.
void conv1d(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y,
            bool accumulate = false);

// Logits of hidden rows [r0, r1) of an [L, d] hidden state, through the LM head W [V, d]:
// out[(r - r0) V + v]. Computed in products over a fixed grid of kLogitRows rows counted from row
// 0, so a row's logits are the same bits however a caller cuts the range: a BLAS may round a
// row differently depending on how many rows the product has (OpenBLAS's SSE3 and AVX2 kernels
// do), and the forward's loss chunks, its kept logits and Model::lm_head must agree exactly.
constexpr int64_t kLogitRows = 256;  // 15 % slower than one product over 2048 rows; 64 was 65 %
void logits_rows(const float* hidden, int64_t L, int64_t d, const float* w, int64_t V, int64_t r0,
                 int64_t r1, float* out);

}  // namespace attnscope::forward_detail
