// The e4m3 rounding DeepSeek-V3.2's indexer applies to its queries and keys (torch.float8_e4m3fn:
// 1 sign, 4 exponent bits with bias 7, 3 mantissa bits, subnormals down to 2^-9, largest finite
// value 448, no infinities), simulated in fp32 so the rest of the indexer stays exact.
#include <algorithm>
#include <cmath>

#include "variants/dsa/dsa.hpp"

namespace attnscope::dsa {

namespace {
constexpr float kMaxE4m3 = 448.0f;  // 1.75 * 2^8: exponent 15 with mantissa 7 is NaN in e4m3fn
constexpr int kMinExponent = -6;    // of the normal numbers; below it the spacing stays 2^-9
constexpr int kMantissaBits = 3;
}  // namespace

float round_e4m3(float x) {
  if (std::isnan(x)) return x;
  const float a = std::fabs(x);
  // Saturate instead of producing NaN (torch's cast would give NaN; DeepSeek's scales keep every
  // value within range, so this only decides what an out-of-range caller gets).
  if (a >= kMaxE4m3) return std::copysign(kMaxE4m3, x);
  if (a == 0.0f) return x;
  int e = 0;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): a's binade is [2^(e-1), 2^e)
  const int exponent = std::max(e - 1, kMinExponent);
  // Spacing of e4m3 values in a's binade; a / quantum is exact (power of two, well inside fp32's
  // range), and nearbyint in the default rounding mode rounds half to even, as the cast does. A
  // rounding up to the next binade lands on 2^e, which e4m3 holds, and stays <= 448 because a
  // < 448 and 448 itself is a multiple of the top binade's spacing.
  const double quantum = std::ldexp(1.0, exponent - kMantissaBits);
  const double r = std::nearbyint(double(a) / quantum) * quantum;
  return std::copysign(static_cast<float>(r), x);
}

void fake_quantize_e4m3(float* data, int64_t rows, int64_t width) {
  constexpr int64_t kBlock = 128;  // values sharing one scale, as DeepSeek's act_quant
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * width;
    for (int64_t b0 = 0; b0 < width; b0 += kBlock) {
      const int64_t b1 = std::min(width, b0 + kBlock);
      float amax = 1e-4f;  // act_quant's clamp: an all-zero block still gets a finite scale
      for (int64_t k = b0; k < b1; ++k) amax = std::max(amax, std::fabs(row[k]));
      // scale = 2^ceil(log2(amax / 448)) with amax / 448 computed in fp32 as torch does; frexp
      // gives the exponent exactly where a log2 might round across an integer.
      const float s = amax / kMaxE4m3;
      int e = 0;
      const float f = std::frexp(s, &e);  // s = f * 2^e, f in [0.5, 1)
      const int exponent = (f == 0.5f) ? e - 1 : e;
      for (int64_t k = b0; k < b1; ++k) {
        row[k] = std::ldexp(round_e4m3(std::ldexp(row[k], -exponent)), exponent);
      }
    }
  }
}

}  // namespace attnscope::dsa
