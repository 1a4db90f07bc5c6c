// The LM head and the next-token loss. The loss reads fp32 logits and sums in double, so a
// perplexity does not drift with the vocabulary size.
#pragma once

#include <cstdint>
#include <span>

namespace attnscope::forward_detail {

// nll[r] = logsumexp(logits[r]) - logits[r][ids[r + 1]] for rows r in [r0, r1) with r + 1 < L,
// where `logits` holds rows [r0, r1) of [L, vocab].
void next_token_nll(const float* logits, int64_t r0, int64_t r1, int64_t vocab,
                    std::span<const int32_t> ids, double* nll);

}  // namespace attnscope::forward_detail
