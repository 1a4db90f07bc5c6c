// The NSA module's parts (descriptor and cost in nsa.cpp, oracle and map tile in reference.cpp,
// fast path in cpu.cpp).
#pragma once

#include "variants/module.hpp"

namespace attnscope {

ATTNSCOPE_MODULE_PARTS(nsa)

}  // namespace attnscope
