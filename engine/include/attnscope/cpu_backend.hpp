// The fast CPU backend ("cpu"): tiled, multi-threaded, vectorized paths for every variant.
// Registered in the registry; this header exists for callers that pin its options (tests, benches).
#pragma once

#include <memory>

#include "attnscope/backend.hpp"

namespace attnscope {

struct CpuOptions {
  int threads = 0;  // 0: ATTNSCOPE_THREADS or the hardware concurrency
  // MLA: which form the fast path computes. `automatic` asks the cost model which is cheaper
  // (absorbed for decode-like shapes, naive for long prefill); the others force one.
  enum class MlaForm { automatic, naive, absorbed } mla_form = MlaForm::automatic;
};

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options = {});

// Threads a CPU run uses by default: ATTNSCOPE_THREADS, else the hardware concurrency.
int cpu_default_threads();

}  // namespace attnscope
