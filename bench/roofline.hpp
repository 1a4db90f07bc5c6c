// The machine's roofline for the benchmarks, measured in the same run: the engine's own probe
// (measure_cpu_peak, the one the cpu backend's calibration and the GUI's roofline use), on the
// benchmark's thread count, so that a benchmark's "% of peak" and the explorer's agree.
#pragma once

#include <string>

#include "attnscope/backend.hpp"

namespace attnscope::bench {

// Measured once per process and thread count (the first call measures).
const DevicePeak& roofline_peak(int threads);

double sgemm_gflops(int threads);  // roofline_peak(threads).gflops: the faster of Eigen, OpenBLAS
double triad_gbps(int threads);    // roofline_peak(threads).gbps: a = b + s * c from DRAM
std::string sgemm_provider(int threads);  // which library and kernels gave the GEMM roof

}  // namespace attnscope::bench
