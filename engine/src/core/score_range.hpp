// Bounds on the products an fp32 backend forms, from the inputs (backend.cpp's
// check_score_range and the variants' own VariantInfo::score_range use them).
#pragma once

#include <limits>
#include <optional>
#include <string>

#include "attnscope/tensor.hpp"

namespace attnscope::score_range {

// Half of FLT_MAX leaves room for rounding.
constexpr double kLimit = 0.5 * std::numeric_limits<float>::max();

// The largest L2 norm over the rows of t's columns [col0, col1) (rows: every index but the last),
// in double so that the squares of fp32 values cannot overflow.
double max_row_norm(const Tensor& t, int64_t col0, int64_t col1);
double max_row_norm(const Tensor& t);
// The largest Frobenius norm of the matrices t[h] over its first index (MLA's per-head W_uk).
double max_matrix_norm(const Tensor& t);
// nullopt when bound <= kLimit, else the error naming `what` ("a score q·k·scale (tensors ...)").
std::optional<std::string> too_large(double bound, const std::string& what);

}  // namespace attnscope::score_range
