// Row-major Eigen aliases and Map views over engine-owned buffers, so every CPU kernel speaks the
// same layout as the tensors (row-major [.., L, D]) without copies.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace attnscope::cpu {

using MatrixR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VectorF = Eigen::VectorXf;
using StridedMap = Eigen::Map<MatrixR, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const MatrixR, Eigen::Unaligned, Eigen::OuterStride<>>;

// View of `rows` rows of `cols` floats, consecutive rows `ld` floats apart.
inline ConstStridedMap view(const float* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld) {
  return ConstStridedMap(p, rows, cols, Eigen::OuterStride<>(ld));
}
inline StridedMap view(float* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld) {
  return StridedMap(p, rows, cols, Eigen::OuterStride<>(ld));
}

// Grow-only, 64-byte aligned scratch. Kernels map Eigen views onto it instead of resizing Eigen
// matrices per task: a resize to a new size frees and reallocates, and buffers near glibc's mmap
// threshold then cost an mmap and fresh page faults every time. The fixed alignment also keeps
// Eigen's vectorized reductions peeling identically in every thread (bit-identical results).
using AlignedVector = std::vector<float, Eigen::aligned_allocator<float>>;
inline float* grow(AlignedVector& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace attnscope::cpu
