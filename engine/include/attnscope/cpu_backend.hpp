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

// The host CPU's peaks with the engine's own threads, the one probe every roofline uses (the cpu
// and reference backends' measure_peak, cached by the lab's device_peak, and the benchmarks' roof
// in bench/roofline.cpp): the faster fp32 GEMM of Eigen (every thread its own product) and
// OpenBLAS (one product on `threads` threads, when libopenblas can be loaded), a triad streaming
// from DRAM and one over a working set that fits in the last-level cache. Each is the best of
// several short repetitions; a repetition during which the threads waited for a CPU (run-queue
// wait in /proc/self/task/*/schedstat) does not count, and when no clean one comes after a few
// tries the peak says so (reliable = false). docs/roofline.md explains the method.
DevicePeak measure_cpu_peak(int threads, const CancelToken& cancel = {});

// The host's last-level cache in bytes (sysfs, the highest cache level of cpu0), 0 when unknown.
int64_t last_level_cache_bytes();

// Test seam: a fraction >= 0 replaces what measure_cpu_peak measures as its threads' run-queue wait
// (fraction of their time) in every repetition, so tests can inject contention, or its absence;
// a negative value restores the real measurement. For a process a test starts (the CLI), the
// environment variable ATTNSCOPE_TEST_CONTENTION=<fraction> does the same.
void set_cpu_contention_override_for_testing(double fraction);

}  // namespace attnscope
