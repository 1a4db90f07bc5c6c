// The memory the engine allows itself: physical memory, or ATTNSCOPE_MEMORY_LIMIT_MB when set
// (tests and shared machines). Problem validation and the KV cache's capacity both read it.
#pragma once

#include <cstdint>

namespace attnscope {

int64_t memory_budget_bytes();

}  // namespace attnscope
