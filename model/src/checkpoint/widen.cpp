// Stored weights -> fp32. Both 16-bit formats widen exactly (every BF16 and F16 value is an fp32
// value), so a widened weight is bit for bit what torch's .float() gives. This runs over every
// weight of a model at least once per load, hence the vector paths.
#include <algorithm>
#include <bit>
#include <cstring>

#include "attnscope/lowp.hpp"
#include "attnscope/parallel.hpp"
#include "checkpoint/shard.hpp"

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#endif

namespace attnscope::checkpoint_detail {

namespace {

uint16_t load_u16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

void widen_f32(const unsigned char* src, int64_t n, float* out) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, src, static_cast<size_t>(n) * 4);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const unsigned char* p = src + 4 * i;
      const uint32_t bits =
          uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
      out[i] = std::bit_cast<float>(bits);
    }
  }
}

void widen_bf16(const unsigned char* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = std::bit_cast<float>(static_cast<uint32_t>(load_u16(src + 2 * i)) << 16);
  }
}

void widen_f16(const unsigned char* src, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
  if constexpr (std::endian::native == std::endian::little) {
    for (; i + 8 <= n; i += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
  }
#endif
  for (; i < n; ++i) out[i] = fp16_bits_to_float(load_u16(src + 2 * i));
}

void widen_serial(const StoredTensor& t, int64_t first, int64_t count, float* out) {
  const StoredType type = *t.type;
  const unsigned char* src = t.data + first * stored_size(type);
  switch (type) {
    case StoredType::f32:
      widen_f32(src, count, out);
      break;
    case StoredType::bf16:
      widen_bf16(src, count, out);
      break;
    case StoredType::f16:
      widen_f16(src, count, out);
      break;
  }
}

}  // namespace

void widen(const StoredTensor& tensor, int64_t first, int64_t count, float* out) {
  // Below a few MB the pool's wake-up costs more than the copy.
  constexpr int64_t kChunk = int64_t(1) << 20;
  if (count <= 2 * kChunk) {
    widen_serial(tensor, first, count, out);
    return;
  }
  ThreadPool& pool = ThreadPool::global();
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  pool.parallel_for(chunks, pool.size(), [&](int64_t c, int) {
    const int64_t begin = c * kChunk;
    const int64_t n = std::min(kChunk, count - begin);
    widen_serial(tensor, first + begin, n, out + begin);
  });
}

}  // namespace attnscope::checkpoint_detail
