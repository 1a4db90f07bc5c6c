// Independent brute-force float64 oracle for every attention variant, plus the tests' helpers.
// Written from the docs (docs/conventions.md, docs/variants/), not from engine/src/reference, so
// no shared misreading hides.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope_tests {

using attnscope::AttentionProblem;
using attnscope::IndexTensor;
using attnscope::Inputs;
using attnscope::Shape;
using attnscope::Tensor;
using attnscope::VariantId;

// The project's one comparison rule for fp32 results against the float64 oracle:
// |out - oracle| <= kTol * (1 + |oracle|), element by element. Never loosened per test.
inline constexpr double kTol = 1e-5;
inline constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A plain row-major float64 tensor: the oracle's working and output type.
struct DTensor {
  Shape shape;
  std::vector<double> data;

  DTensor() = default;
  explicit DTensor(Shape s, double fill = 0.0);

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  bool empty() const { return data.empty(); }
  double& at(std::initializer_list<int64_t> idx) { return data[static_cast<size_t>(offset(idx))]; }
  double at(std::initializer_list<int64_t> idx) const {
    return data[static_cast<size_t>(offset(idx))];
  }
  int64_t offset(std::initializer_list<int64_t> idx) const;
};

struct OracleResult {
  DTensor o;                             // [B, H, Lq, Dv]
  DTensor lse;                           // [B, H, Lq], natural log; empty for Gated DeltaNet
  std::optional<IndexTensor> selection;  // MoBA: [B, H, Lq, top_k], ascending, -1 padded
  std::optional<DTensor> final_state;    // Gated DeltaNet: [B, H, Dk, Dv]
  // [B, H, Lq, Lk]: softmax probabilities (masked entries 0) or, for Gated DeltaNet, the implicit
  // attention A[i][j] = weight of v_j in o_i (the initial state's contribution is not in A).
  DTensor attention;
  // MoBA only: smallest gap, over all rows, between the weakest selected past-block score and the
  // strongest unselected eligible one. Tests regenerate inputs when it is tiny, because fp32 gate
  // scores may then legitimately order the two blocks differently from float64.
  double min_gate_gap = std::numeric_limits<double>::infinity();
};

// Runs the variant named by problem.variant on inputs (names and layouts: docs/conventions.md), in
// float64, by materializing each head's full [Lq, Lk] score and mask matrices.
OracleResult oracle_run(const AttentionProblem& problem, const Inputs& inputs);

// --- Seeded random inputs --------------------------------------------------------------------

// Normal deviates from a std::mt19937_64 via Box-Muller written here, so a seed gives the same
// numbers with every standard library (std::normal_distribution is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform();  // [0, 1)
  double normal();   // N(0, 1)
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

Tensor random_normal(const Shape& shape, Rng& rng, double stddev = 1.0);
Tensor random_uniform(const Shape& shape, Rng& rng, double lo, double hi);

// Every input tensor the problem's variant needs, i.i.d. and deterministic in (problem, seed).
// Gated DeltaNet: g = log(sigmoid(x)) <= 0, beta = sigmoid(x) in (0, 1), and without qk_l2norm the
// keys are unit vectors (as the GDN layer feeds them), which keeps the recurrence well conditioned.
Inputs random_inputs(const AttentionProblem& problem, uint64_t seed, bool initial_state = false);

// --- Tensor plumbing for invariants ----------------------------------------------------------

DTensor to_double(const Tensor& t);
// Elements [lo, hi) along dimension `dim`, everything else kept.
Tensor slice_dim(const Tensor& t, int dim, int64_t lo, int64_t hi);
// Each slice along `dim` repeated `times` times consecutively (torch.repeat_interleave).
Tensor repeat_interleave(const Tensor& t, int dim, int64_t times);
// "[0, 3, 17, 2]" for a flat offset into `shape`.
std::string index_str(const Shape& shape, int64_t flat);

// --- Comparisons (they report the worst element with its index, value and expectation) ------

// got (fp32) vs want (float64) under kTol. -inf must match -inf exactly; NaN never passes.
::testing::AssertionResult all_close(std::string_view what, const Tensor& got, const DTensor& want);
// Two engine results that must agree under the same rule (want plays the oracle's part).
::testing::AssertionResult all_close(std::string_view what, const Tensor& got, const Tensor& want);
::testing::AssertionResult same_indices(std::string_view what, const IndexTensor& got,
                                        const IndexTensor& want);
// No NaN anywhere, and no +inf; -inf allowed only where allow_neg_inf (lse of masked rows).
::testing::AssertionResult no_nan(std::string_view what, const Tensor& t, bool allow_neg_inf);

// "dense B=1 H=8 Hkv=2 Lq=37 Lk=129 Dk=16 Dv=24 causal scale=0.3 ..." for traces.
std::string describe_case(const AttentionProblem& problem);

}  // namespace attnscope_tests
