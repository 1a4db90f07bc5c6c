// The fast CPU backend ("cpu"): tiled, multi-threaded, vectorized paths for every variant.
// Registered in the registry; this header exists for callers that pin its options (tests, benches).
#pragma once

#include <memory>

#include "attnscope/backend.hpp"

namespace attnscope {

struct CpuOptions {
  int threads = 0;  // 0: ATTNSCOPE_THREADS or the hardware concurrency
  // For a variant with two forms of the same answer (MLA's naive and absorbed): which one the fast
  // path computes. `automatic` asks the cost model which is cheaper (absorbed for decode-like
  // shapes, naive for long prefill); the others force one.
  enum class Form { automatic, naive, absorbed } form = Form::automatic;
};

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options = {});

// Threads a CPU run uses by default: ATTNSCOPE_THREADS, else the hardware concurrency.
int cpu_default_threads();

// The host CPU's peaks with the engine's own threads: every thread multiplies its own fp32
// matrices (Eigen GEMM) and streams its own slice of a triad. The cpu and reference backends'
// measure_peak; the lab's device_peak caches it.
DevicePeak measure_cpu_peak(int threads, const CancelToken& cancel = {});

}  // namespace attnscope
