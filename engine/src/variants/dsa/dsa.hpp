// The DSA module's parts (descriptor and cost in dsa.cpp, oracle and map tile in reference.cpp,
// fast path in cpu.cpp, the indexer's e4m3 rounding in fp8.cpp).
#pragma once

#include <cstdint>

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(dsa)

namespace dsa {
// The value e4m3 (OCP FP8, as torch.float8_e4m3fn) holds nearest to x: round to nearest, ties to
// even, saturating at ±448 (a finite x never becomes NaN).
float round_e4m3(float x);
// What the released indexer does to one tensor before its dot products: every run of 128 values
// along the last axis (fewer at the row's end) is divided by one power-of-two scale that brings
// its largest magnitude within e4m3's range (448), rounded to e4m3, and multiplied back. In place.
void fake_quantize_e4m3(float* data, int64_t rows, int64_t width);
}  // namespace dsa

}  // namespace attnscope
