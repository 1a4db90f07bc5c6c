// Device peaks for the roofline: measured once per (backend, device) and cached on disk, so the
// throughput view places runs against what this machine really does, not a datasheet. Part of the
// measurement lab (lab/), above the engine.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cpu_backend.hpp"  // measure_cpu_peak, the cpu backend's own measurement

namespace attnscope {

// The cached peak of this backend's device, measuring it (Backend::measure_peak) when there is
// none or `remeasure` is set. The cache is a JSON file in $ATTNSCOPE_CACHE_DIR, else
// $XDG_CACHE_HOME/attnscope, else ~/.cache/attnscope (peaks.json); an unreadable or malformed
// cache is ignored and rewritten, never an error.
DevicePeak device_peak(Backend& backend, bool remeasure = false, const CancelToken& cancel = {});

// Where device_peak keeps its file (for tests and `attnscope-cli info`).
std::string peak_cache_path();

// Every valid entry of that file (cached = true), for `attnscope-cli info`; empty without one.
std::vector<DevicePeak> cached_peaks();

// The one JSON form of a peak (the cache file, sweep files, the GUI's exports): backend, device,
// gflops, gbps, gemm, copy, seconds, measured_at, cached.
nlohmann::ordered_json peak_to_json(const DevicePeak& peak);
// Reads it back; throws Error("<path>.<key> must be ...") for a missing or mistyped field
// (backend, device, gflops and gbps are required, the rest optional).
DevicePeak peak_from_json(const nlohmann::json& j, const std::string& path);

// One line: "cpu (AMD EPYC …, 2 threads): 150 GFLOP/s fp32 GEMM, 40 GB/s copy".
std::string describe(const DevicePeak& peak);

}  // namespace attnscope
