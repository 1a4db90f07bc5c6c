// Owning host tensors, row-major and contiguous, in PyTorch's layout conventions.
// fp32 for data, int32 for indices (MoBA's block selection); nothing else lives on the host.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "attnscope/large_alloc.hpp"

namespace attnscope {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 8, 128, 64]"
// Product of the dims; throws Error on a negative dim or int64 overflow.
int64_t shape_numel(const Shape& shape);

template <class T>
class BasicTensor;
int64_t first_non_finite(const BasicTensor<float>& t);

template <class T>
class BasicTensor {
 public:
  using value_type = T;
  BasicTensor() = default;
  // Allocates numel(shape) elements set to `fill`; throws Error if the allocation fails.
  explicit BasicTensor(Shape shape, T fill = T{});

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i < 0 ? i + rank() : i)]; }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  bool empty() const { return shape_.empty() && data_.empty(); }
  int64_t bytes() const { return numel() * static_cast<int64_t>(sizeof(T)); }

  // Mutable access forgets the cached finiteness verdict (see first_non_finite).
  T* data() {
    finite_ = Finite::unknown;
    return data_.data();
  }
  const T* data() const { return data_.data(); }
  std::span<T> span() {
    finite_ = Finite::unknown;
    return data_;
  }
  std::span<const T> span() const { return data_; }

  // Element access by full index; bounds are the caller's business (hot loops use data()).
  T& at(std::initializer_list<int64_t> idx) {
    finite_ = Finite::unknown;
    return data_[static_cast<size_t>(offset(idx))];
  }
  const T& at(std::initializer_list<int64_t> idx) const {
    return data_[static_cast<size_t>(offset(idx))];
  }

  // Same data, new shape with the same element count; throws Error otherwise.
  void reshape(Shape shape);

 private:
  int64_t offset(std::initializer_list<int64_t> idx) const {
    int64_t off = 0;
    size_t d = 0;
    for (int64_t i : idx) off = off * shape_[d++] + i;
    return off;
  }
  Shape shape_;
  std::vector<T, LargeAllocator<T>> data_;  // big tensors on huge pages (large_alloc.hpp)
  // Every run checks its inputs for NaN/Inf; caching the verdict keeps repeated runs on the same
  // tensors (benchmarks, the GUI's re-runs, decode loops) from paying a full memory pass each time.
  // A pointer kept from data() and written later bypasses this; engine code never does that.
  enum class Finite : int8_t { unknown, yes };
  mutable Finite finite_ = Finite::unknown;
  mutable float max_abs_ = 0;  // valid while finite_ == yes; found in the same pass
  friend int64_t first_non_finite(const BasicTensor<float>& t);
  friend float max_abs(const BasicTensor<float>& t);
};

using Tensor = BasicTensor<float>;
using IndexTensor = BasicTensor<int32_t>;

extern template class BasicTensor<float>;
extern template class BasicTensor<int32_t>;

// Index of the first NaN/Inf element, or -1 when all are finite (cached until mutable access).
int64_t first_non_finite(const Tensor& t);
// The largest |x| (+inf when some element is not finite), from the same cached pass.
float max_abs(const Tensor& t);

}  // namespace attnscope
