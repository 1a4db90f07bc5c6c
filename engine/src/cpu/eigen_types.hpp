// Row-major Eigen aliases and Map views over engine-owned buffers, so every CPU kernel speaks the
// same layout as the tensors (row-major [.., L, D]) without copies.
#pragma once

#include <Eigen/Core>

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

}  // namespace attnscope::cpu
