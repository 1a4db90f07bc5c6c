// Host tensor storage and the small helpers around it.
#include "attnscope/tensor.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <new>

#include "attnscope/error.hpp"
#include "attnscope/inputs.hpp"

namespace attnscope {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
    throw Error(std::string(what) + " is too large (overflows 64-bit size arithmetic)");
  }
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) {
    throw Error(std::string(what) + " is too large (overflows 64-bit size arithmetic)");
  }
  return r;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("tensor shape " + shape_str(shape) + " has a negative dimension");
    n = checked_mul(n, d, ("tensor of shape " + shape_str(shape)).c_str());
  }
  return n;
}

template <class T>
BasicTensor<T>::BasicTensor(Shape shape, T fill) : shape_(std::move(shape)) {
  const int64_t n = shape_numel(shape_);
  checked_mul(n, static_cast<int64_t>(sizeof(T)), ("tensor of shape " + shape_str(shape_)).c_str());
  try {
    data_.assign(static_cast<size_t>(n), fill);
  } catch (const std::bad_alloc&) {
    throw Error("cannot allocate a tensor of shape " + shape_str(shape_) + " (" +
                std::to_string(n * static_cast<int64_t>(sizeof(T)) >> 20) + " MiB): out of memory");
  } catch (const std::length_error&) {
    throw Error("tensor of shape " + shape_str(shape_) + " is too large to allocate");
  }
}

template <class T>
void BasicTensor<T>::reshape(Shape shape) {
  if (shape_numel(shape) != numel()) {
    throw Error("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  shape_ = std::move(shape);
}

template class BasicTensor<float>;
template class BasicTensor<int32_t>;

int64_t first_non_finite(const Tensor& t) {
  if (t.finite_ == Tensor::Finite::yes) return -1;
  const float* p = t.data();
  const int64_t n = t.numel();
  // On the bits: |x| is x without its sign bit, and for non-negative floats the integer order is
  // the float order, with Inf and NaN above every finite value. So one unsigned max per block
  // gives both the block's max |x| and whether it holds a non-finite value, and vectorizes (a
  // float max or sum may not be reordered without -ffast-math: that loop ran at ~3 GB/s, a fifth
  // of Gated DeltaNet's recurrent run).
  constexpr int64_t kBlock = 4096;
  constexpr uint32_t kAbs = 0x7fffffffu, kInf = 0x7f800000u;
  uint32_t most = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    uint32_t block_most = 0;
    for (int64_t i = b0; i < b1; ++i)
      block_most = std::max(block_most, std::bit_cast<uint32_t>(p[i]) & kAbs);
    if (block_most < kInf) {
      most = std::max(most, block_most);
      continue;
    }
    for (int64_t i = b0; i < b1; ++i) {
      if (!std::isfinite(p[i])) return i;
    }
  }
  t.max_abs_ = std::bit_cast<float>(most);
  t.finite_ = Tensor::Finite::yes;
  return -1;
}

float max_abs(const Tensor& t) {
  if (first_non_finite(t) >= 0) return std::numeric_limits<float>::infinity();
  return t.max_abs_;
}

const Tensor& Inputs::at(std::string_view name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("missing input tensor '" + std::string(name) + "'");
  return it->second;
}

}  // namespace attnscope
