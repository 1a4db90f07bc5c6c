#include "forward/rope.hpp"

#include <cmath>

#include "forward/ops.hpp"

namespace attnscope::forward_detail {

std::vector<float> rope_inv_freq_fp32(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half));
  const float base = static_cast<float>(c.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    // 1.0 / (base ** (arange(0, dim, 2).float() / dim)), every step an fp32 tensor op
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    const float power = static_cast<float>(std::pow(double(base), double(exponent)));
    out[size_t(i)] = 1.0f / power;
  }
  if (!c.rope_llama3) return out;
  const ModelConfig::Llama3Scaling& s = *c.rope_llama3;
  const float factor = static_cast<float>(s.factor);
  const float low = static_cast<float>(s.low_freq_factor);
  const float high = static_cast<float>(s.high_freq_factor);
  const float orig = static_cast<float>(s.original_max_position_embeddings);
  const float low_wavelen = orig / low;
  const float high_wavelen = orig / high;
  const float two_pi = static_cast<float>(2 * M_PI);
  for (float& inv : out) {
    const float wavelen = two_pi / inv;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      inv = inv / factor;
      continue;
    }
    const float smooth = (orig / wavelen - low) / (high - low);
    inv = (1.0f - smooth) * inv / factor + smooth * inv;
  }
  return out;
}

RopeTable rope_table(const std::vector<float>& inv_freq, int64_t tokens) {
  RopeTable t;
  t.half = static_cast<int64_t>(inv_freq.size());
  t.cos.resize(static_cast<size_t>(tokens * t.half));
  t.sin.resize(t.cos.size());
  for_rows(tokens, t.half, [&](int64_t r0, int64_t r1) {
    for (int64_t p = r0; p < r1; ++p) {
      for (int64_t i = 0; i < t.half; ++i) {
        const float angle = static_cast<float>(p) * inv_freq[size_t(i)];
        // Correctly rounded fp32 cos/sin of the fp32 angle (torch's are within an ulp of it).
        t.cos[size_t(p * t.half + i)] = static_cast<float>(std::cos(double(angle)));
        t.sin[size_t(p * t.half + i)] = static_cast<float>(std::sin(double(angle)));
      }
    }
  });
  return t;
}

void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const RopeTable& t) {
  const int64_t half = head_dim / 2;
  const int64_t width = heads * head_dim;
  for_rows(tokens, width, [&](int64_t r0, int64_t r1) {
    for (int64_t p = r0; p < r1; ++p) {
      const float* c = t.cos.data() + p * t.half;
      const float* s = t.sin.data() + p * t.half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + p * width + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[i] + (-b) * s[i];  // rotate_half(x) = [-x2, x1]
          v[i + half] = b * c[i] + a * s[i];
        }
      }
    }
  });
}

}  // namespace attnscope::forward_detail
