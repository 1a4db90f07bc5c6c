// Merging partial attention results by log-sum-exp: the one operation behind split-KV decode,
// MoBA's own-block + selected-block parts, tiled probes and (later) ring attention across devices.
#pragma once

#include <span>

#include "attnscope/tensor.hpp"

namespace attnscope {

// Two partial softmax-attention results over disjoint key sets, (o_a, lse_a) and (o_b, lse_b),
// become the result over their union: lse = log(e^lse_a + e^lse_b), o = Σ e^(lse_x - lse) o_x.
// A part with lse = -inf (no visible keys) contributes nothing; two such parts stay 0 / -inf.
void merge_row(std::span<float> o_acc, float& lse_acc, std::span<const float> o_part,
               float lse_part);

// Tensor form: o [..., Lq, Dv] and lse [..., Lq] with identical leading shape; acc is updated.
void merge_partials(Tensor& o_acc, Tensor& lse_acc, const Tensor& o_part, const Tensor& lse_part);

}  // namespace attnscope
