// Copying a range along one axis of a row-major tensor: a batch row, a run of tokens. Used where
// decode moves between a step's batch and per-sequence tensors.
#pragma once

#include <cstring>

#include "attnscope/tensor.hpp"

namespace attnscope {

// Elements [i0, i1) along `axis`, everything else kept (everything before the axis is an outer
// loop, everything after it is contiguous per index).
inline Tensor slice_axis(const Tensor& t, int axis, int64_t i0, int64_t i1) {
  Shape shape = t.shape();
  const int64_t len = shape[size_t(axis)];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  shape[size_t(axis)] = i1 - i0;
  Tensor out(shape);
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(out.data() + o * (i1 - i0) * inner, t.data() + (o * len + i0) * inner,
                size_t((i1 - i0) * inner) * sizeof(float));
  }
  return out;
}

}  // namespace attnscope
