#include "forward/ops.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "attnscope/parallel.hpp"

namespace attnscope::forward_detail {

void for_rows(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn) {
  // ~64K values per block: large enough that the pool's hand-off is noise.
  constexpr int64_t kBlockValues = 1 << 16;
  const int64_t block = std::max<int64_t>(1, kBlockValues / std::max<int64_t>(cols, 1));
  const int64_t blocks = (rows + block - 1) / block;
  if (blocks <= 1) {
    if (rows > 0) fn(0, rows);
    return;
  }
  ThreadPool& pool = ThreadPool::global();
  pool.parallel_for(blocks, pool.size(),
                    [&](int64_t b, int) { fn(b * block, std::min(rows, (b + 1) * block)); });
}

void rms_norm(const float* x, float* out, int64_t rows, int64_t cols, const float* weight,
              double eps) {
  const float eps_f = static_cast<float>(eps);
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      // The mean of squares in double, rounded once: torch's fp32 reduction is accurate to about
      // that, where a plain fp32 running sum would not be over thousands of columns.
      double sum = 0;
      for (int64_t j = 0; j < cols; ++j) sum += double(xr[j]) * double(xr[j]);
      const float variance = static_cast<float>(sum / double(cols));
      const float inv = 1.0f / std::sqrt(variance + eps_f);
      for (int64_t j = 0; j < cols; ++j) yr[j] = weight[j] * (xr[j] * inv);
    }
  });
}

void layer_norm(const float* x, float* out, int64_t rows, int64_t cols, const float* weight,
                const float* bias, double eps) {
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      double sum = 0;
      for (int64_t j = 0; j < cols; ++j) sum += xr[j];
      const double mean = sum / double(cols);
      double sq = 0;
      for (int64_t j = 0; j < cols; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
      const float rstd = static_cast<float>(1.0 / std::sqrt(sq / double(cols) + eps));
      const float mean_f = static_cast<float>(mean);
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mean_f) * rstd * weight[j] + bias[j];
    }
  });
}

void head_rms_norm(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const float* weight,
                   double eps) {
  // Rows of Dh values, one per (token, head), all normalized with the same weight.
  rms_norm(x, x, tokens * heads, head_dim, weight, eps);
}

void silu_mul(float* gate, const float* up, int64_t rows, int64_t cols) {
  // Eigen's vectorized exp: a scalar exp per element was a visible share of a short forward. It
  // computes into an aligned scratch and copies back: on an unaligned destination Eigen would peel
  // a few leading elements onto the scalar exp, which rounds differently in the last bit, and the
  // forward's result would depend on where the allocator put the buffer.
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    thread_local Eigen::ArrayXf t;
    Eigen::Map<Eigen::ArrayXf> g(gate + r0 * cols, (r1 - r0) * cols);
    const Eigen::Map<const Eigen::ArrayXf> u(up + r0 * cols, (r1 - r0) * cols);
    t.resize(g.size());
    t = g / (1.0f + (-g).exp()) * u;
    g = t;
  });
}

void gelu(float* x, int64_t rows, int64_t cols, bool tanh_approximation) {
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    if (tanh_approximation) {
      // NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const float k = static_cast<float>(std::sqrt(2.0 / M_PI));
      for (int64_t i = r0 * cols; i < r1 * cols; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * (v * v * v))));
      }
    } else {
      for (int64_t i = r0 * cols; i < r1 * cols; ++i) {
        const float v = x[i];
        x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(double(v) * M_SQRT1_2)));
      }
    }
  });
}

void add_bias(float* y, int64_t rows, int64_t cols, const float* bias) {
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* yr = y + r * cols;
      for (int64_t j = 0; j < cols; ++j) yr[j] += bias[j];
    }
  });
}

Tensor to_heads(const float* src, int64_t tokens, int64_t stride, int64_t col0, int64_t heads,
                int64_t head_dim, Tensor reuse) {
  const Shape shape = {1, heads, tokens, head_dim};
  Tensor out = reuse.numel() == shape_numel(shape) ? std::move(reuse) : Tensor(shape);
  out.reshape(shape);
  float* dst = out.data();
  for_rows(tokens, heads * head_dim, [&](int64_t r0, int64_t r1) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t p = r0; p < r1; ++p) {
        std::memcpy(dst + (h * tokens + p) * head_dim, src + p * stride + col0 + h * head_dim,
                    static_cast<size_t>(head_dim) * sizeof(float));
      }
    }
  });
  return out;
}

void from_heads(const Tensor& src, float* dst) {
  const int64_t heads = src.dim(1), tokens = src.dim(2), head_dim = src.dim(3);
  const float* s = src.data();
  for_rows(tokens, heads * head_dim, [&](int64_t r0, int64_t r1) {
    for (int64_t p = r0; p < r1; ++p) {
      for (int64_t h = 0; h < heads; ++h) {
        std::memcpy(dst + (p * heads + h) * head_dim, s + (h * tokens + p) * head_dim,
                    static_cast<size_t>(head_dim) * sizeof(float));
      }
    }
  });
}

}  // namespace attnscope::forward_detail
