// Device peaks for the roofline: measured once per (backend, device) and cached on disk, so the
// throughput view places runs against what this machine really does, not a datasheet.
#pragma once

#include <string>
#include <vector>

#include "attnscope/backend.hpp"

namespace attnscope {

// The cached peak of this backend's device, measuring it (Backend::measure_peak) when there is
// none or `remeasure` is set. The cache is a JSON file in $ATTNSCOPE_CACHE_DIR, else
// $XDG_CACHE_HOME/attnscope, else ~/.cache/attnscope (peaks.json); an unreadable or malformed
// cache is ignored and rewritten, never an error.
DevicePeak device_peak(Backend& backend, bool remeasure = false, const CancelToken& cancel = {});

// The host CPU's peaks with the engine's own threads: every thread multiplies its own fp32
// matrices (Eigen GEMM) and streams its own slice of a triad. Used by the cpu and reference
// backends' measure_peak.
DevicePeak measure_cpu_peak(int threads, const CancelToken& cancel = {});

// Where device_peak keeps its file (for tests and `attnscope-cli info`).
std::string peak_cache_path();

// Every valid entry of that file (cached = true), for `attnscope-cli info`; empty without one.
std::vector<DevicePeak> cached_peaks();

// One line: "cpu (AMD EPYC …, 2 threads): 150 GFLOP/s fp32 GEMM, 40 GB/s copy".
std::string describe(const DevicePeak& peak);

}  // namespace attnscope
