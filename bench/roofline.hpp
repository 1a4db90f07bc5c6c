// The machine's roofline, measured in the same run as the benchmarks: SGEMM peak (OpenBLAS when
// available) and STREAM-style triad bandwidth, both on the benchmark's thread count.
#pragma once

namespace attnscope::bench {

double sgemm_gflops(int threads, int n = 2048);  // best of a few runs
double triad_gbps(int threads);                  // a[i] = b[i] + s * c[i] over 3 x 256 MiB
const char* sgemm_provider();

}  // namespace attnscope::bench
