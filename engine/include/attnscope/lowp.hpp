// Host emulation of bf16/fp16 computation: exact round-to-nearest-even conversions, inputs rounded
// to a precision, and the naive low-precision attention a plain PyTorch bf16 program computes.
#pragma once

#include <cstdint>

#include "attnscope/backend.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

// IEEE 754 conversions written out bit by bit (no compiler extension types), so that host code,
// tests and the CUDA backend's expectations agree on every value:
//   bf16: 1 sign, 8 exponent, 7 mantissa bits (fp32's range, 3 significant decimal digits);
//   fp16: 1 sign, 5 exponent, 10 mantissa bits (largest finite 65504, subnormals down to 2^-24).
// float -> 16 bits rounds to nearest, ties to even; values beyond the largest finite value (after
// rounding) become +-inf, NaN stays NaN (quiet), signed zeros and subnormals are kept exactly.
uint16_t float_to_bf16_bits(float x);
uint16_t float_to_fp16_bits(float x);
// 16 bits -> float is exact (every bf16 and fp16 value is an fp32 value).
float bf16_bits_to_float(uint16_t bits);
float fp16_bits_to_float(uint16_t bits);

// x rounded to the nearest value of `precision` and returned as float (fp32: x itself).
float round_to(float x, Precision precision);

// Smallest magnitude that rounds to infinity in `precision` (fp16: 65520, bf16: just below
// FLT_MAX); +inf for fp32. A finite input at or above it cannot be represented.
float overflow_threshold(Precision precision);
// Flat index of the first element that is finite in fp32 but infinite once rounded to
// `precision`, or -1 when every element is representable.
int64_t first_unrepresentable(const Tensor& t, Precision precision);

// Every tensor of `inputs` with each element rounded to `precision` (a plain copy for fp32). What
// a device computing in that precision sees once the fp32 host inputs are uploaded.
Inputs round_inputs(const Inputs& inputs, Precision precision);

// Dense / GQA / MQA / SWA (+ sinks) attention as a naive PyTorch program computes it in
// problem.precision, the baseline of flash-attention's test rule ("no worse than twice the error
// of the same computation done naively in bf16"):
//   q, k, v rounded;  S = q kᵀ accumulated in fp32, rounded;  S·scale rounded;
//   P = softmax(S·scale + mask) in fp32 from the rounded scores, rounded;
//   o = P v accumulated in fp32, rounded;  lse = the fp32 log-sum-exp of the rounded scaled
//   scores, rounded (what torch.logsumexp returns on a bf16 tensor).
// Masking and GQA follow the reference (KeyMask, bottom-right causal alignment); a row that sees no
// key gives o = 0 and lse = -inf (where PyTorch would give NaN). Works for fp32 too (then every
// rounding is the identity). Throws Error for other variants or invalid problems/inputs.
RunResult naive_lowp_reference(const AttentionProblem& problem, const Inputs& inputs);

}  // namespace attnscope
