// bf16/fp16 on the host: bit-exact round-to-nearest-even conversions and the naive low-precision
// attention baseline that the CUDA tensor-core path is judged against (lowp.hpp).
#include "attnscope/lowp.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/registry.hpp"

namespace attnscope {

uint16_t float_to_bf16_bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  // NaN: keep the sign and the top payload bits, force the quiet bit so that truncation cannot
  // turn a NaN whose payload sits in the low 16 bits into an infinity.
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);
  // bf16 is fp32's top half. Adding 0x7fff plus the kept part's lowest bit rounds to nearest with
  // ties to even; a carry out of the mantissa bumps the exponent, which is also right at the top
  // of the range (the largest finite values round to infinity) and for subnormals.
  const uint32_t lsb = (u >> 16) & 1u;
  return uint16_t((u + 0x7fffu + lsb) >> 16);
}

float bf16_bits_to_float(uint16_t bits) {
  return std::bit_cast<float>(uint32_t(bits) << 16);
}

uint16_t float_to_fp16_bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;                                            // |x|
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x03ffu));  // quiet NaN
  // 65520 = 0x477ff000 is halfway between 65504 (odd mantissa) and 2^16: ties to even go up, so it
  // and everything above it (inf included) become infinity.
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);
  if (a >= 0x38800000u) {  // |x| >= 2^-14: a normal fp16
    // Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits, ties to even; a
    // carry out of the mantissa increments the exponent, as it should.
    const uint32_t lsb = (a >> 13) & 1u;
    const uint32_t r = a - (112u << 23) + 0x0fffu + lsb;
    return uint16_t(sign | (r >> 13));
  }
  // Subnormal fp16 (or zero): the result counts units of 2^-24. |x| <= 2^-25 is at most half a
  // unit, and exactly half rounds to the even neighbour 0. This also flushes fp32 subnormals.
  if (a <= 0x33000000u) return sign;
  const uint32_t exponent = a >> 23;                          // 102 .. 112 here
  const uint32_t mantissa = (a & 0x007fffffu) | 0x00800000u;  // 24 significant bits
  // |x| = mantissa * 2^(exponent - 150) = (mantissa >> shift) units of 2^-24, shift = 126 - e.
  const uint32_t shift = 126u - exponent;  // 14 .. 24
  const uint32_t kept = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  // Rounding 1023.5 units up gives 1024 = 0x0400, the smallest normal: the encoding carries over.
  const uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  return uint16_t(sign | rounded);
}

float fp16_bits_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x03ffu;
  if (exponent == 0x1fu) {  // inf, or NaN with its payload moved to fp32's top mantissa bits
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {  // zero or subnormal: mantissa units of 2^-24, exact in fp32
    const float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

float round_to(float x, Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return bf16_bits_to_float(float_to_bf16_bits(x));
    case Precision::fp16:
      return fp16_bits_to_float(float_to_fp16_bits(x));
    case Precision::fp32:
      break;
  }
  return x;
}

float overflow_threshold(Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return std::bit_cast<float>(0x7f7f8000u);  // halfway above bf16's largest, 0x7f7f
    case Precision::fp16:
      return 65520.0f;
    case Precision::fp32:
      break;
  }
  return std::numeric_limits<float>::infinity();
}

int64_t first_unrepresentable(const Tensor& t, Precision precision) {
  const float limit = overflow_threshold(precision);
  const float* x = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float a = std::fabs(x[i]);
    if (a >= limit && std::isfinite(a)) return i;
  }
  return -1;
}

Inputs round_inputs(const Inputs& inputs, Precision precision) {
  Inputs out = inputs;
  if (precision == Precision::fp32) return out;
  for (auto& [name, t] : out.tensors) {
    for (float& x : t.span()) x = round_to(x, precision);
  }
  return out;
}

RunResult naive_lowp_reference(const AttentionProblem& p, const Inputs& raw) {
  if (!variant_info(p.variant).low_precision) {
    throw Error("naive_lowp_reference covers the variants with a low-precision path only (got " +
                std::string(variant_info(p.variant).name) + ")");
  }
  check_inputs(p, raw);
  const Precision prec = p.precision;
  auto rnd = [prec](float x) { return round_to(x, prec); };
  const Inputs in = round_inputs(raw, prec);

  const ProblemShape& s = p.shape;
  const int64_t B = s.batch, H = s.heads, Hkv = s.kv_heads, Lq = s.q_len, Lk = s.kv_len;
  const int64_t Dk = s.head_dim, Dv = s.v_head_dim, group = H / Hkv;
  const Tensor& q = in.at("q");  // [B, H, Lq, Dk], rounded
  const Tensor& k = in.at("k");  // [B, Hkv, Lk, Dk], rounded
  const Tensor& v = in.at("v");  // [B, Hkv, Lk, Dv], rounded
  const KeyMask mask = KeyMask::of(p);
  // A Python float scale meets a bf16 tensor as an fp32 multiply whose result is rounded.
  const float scale = static_cast<float>(p.effective_scale());
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  RunResult r;
  r.o = Tensor({B, H, Lq, Dv});
  r.lse = Tensor({B, H, Lq});
  std::vector<float> row(static_cast<size_t>(Lk));  // [Lk] one row of scores, then of P
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / group;  // contiguous groups, as repeat_interleave
      const float* kb = k.data() + (b * Hkv + kvh) * Lk * Dk;
      const float* vb = v.data() + (b * Hkv + kvh) * Lk * Dv;
      for (int64_t i = 0; i < Lq; ++i) {
        const float* qi = q.data() + ((b * H + h) * Lq + i) * Dk;
        // S = q kᵀ: fp32 accumulation, the matmul's output rounded; then the rounded scaling.
        float m = neg_inf;
        for (int64_t j = 0; j < Lk; ++j) {
          if (!mask.visible(i, j)) {
            row[j] = neg_inf;
            continue;
          }
          float dot = 0;
          for (int64_t d = 0; d < Dk; ++d) dot += qi[d] * kb[j * Dk + d];
          row[j] = rnd(rnd(dot) * scale);
          m = std::max(m, row[j]);
        }
        float* oi = r.o.data() + ((b * H + h) * Lq + i) * Dv;
        float& lse = r.lse.data()[(b * H + h) * Lq + i];
        if (m == neg_inf) {  // no visible key: o = 0, lse = -inf (docs/conventions.md)
          std::fill(oi, oi + Dv, 0.0f);
          lse = neg_inf;
          continue;
        }
        // softmax in fp32 (PyTorch upcasts bf16/fp16 softmax inputs), probabilities rounded.
        float sum = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          row[j] = row[j] == neg_inf ? 0.0f : std::exp(row[j] - m);
          sum += row[j];
        }
        for (int64_t j = 0; j < Lk; ++j) row[j] = rnd(row[j] / sum);
        lse = rnd(m + std::log(sum));
        // o = P v: fp32 accumulation, rounded output.
        for (int64_t d = 0; d < Dv; ++d) {
          float acc = 0;
          for (int64_t j = 0; j < Lk; ++j) acc += row[j] * vb[j * Dv + d];
          oi[d] = rnd(acc);
        }
      }
    }
  }
  r.backend = "naive " + std::string(precision_name(prec));
  return r;
}

}  // namespace attnscope
