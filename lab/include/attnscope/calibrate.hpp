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
// $XDG_CACHE_HOME/attnscope, else ~/.cache/attnscope (peaks.json), keyed by backend, device and
// host CPU model; an unreadable, malformed or old-format cache is ignored and rewritten, never an
// error. A measurement that saw contention (reliable = false) is returned but not cached.
DevicePeak device_peak(Backend& backend, bool remeasure = false, const CancelToken& cancel = {});

// Where device_peak keeps its file (for tests and `attnscope-cli info`).
std::string peak_cache_path();

// Every valid entry of that file for this host's CPU (cached = true), for `attnscope-cli info`;
// empty without one.
std::vector<DevicePeak> cached_peaks();

// The one JSON form of a peak (the cache file, sweep files, the GUI's exports): backend, device,
// gflops, gbps, gemm, copy, seconds, measured_at, cached, cache_gbps, cache_bytes, cache_copy,
// reliable, contention, cpu_model.
nlohmann::ordered_json peak_to_json(const DevicePeak& peak);
// Reads it back; throws Error("<path>.<key> must be ...") for a missing or mistyped field
// (backend, device, gflops and gbps are required, the rest optional).
DevicePeak peak_from_json(const nlohmann::json& j, const std::string& path);

// One line: "cpu (AMD EPYC …, 2 threads): 150 GFLOP/s fp32 GEMM, 40 GB/s copy, 120 GB/s in
// cache, measured …", and "(unreliable …)" for a contended calibration.
std::string describe(const DevicePeak& peak);

// Which bandwidth bounds a run: DRAM's, or the last-level cache's when the run's working set fits
// in it (a working set that stays in cache is not bounded by DRAM bandwidth).
enum class Roof { memory, cache };
const char* roof_name(Roof roof);  // "memory", "cache"

// A point above its roof by more than this fraction is a measurement problem (the roof was
// measured low, or the run's counters overstate its work), never an achievement.
constexpr double kAboveRoofTolerance = 0.02;

// A run's point against a peak: the roof that applies, its height at the run's intensity, the
// fraction of it the run reached, and whether the point lies above it.
struct RoofPlacement {
  Roof roof = Roof::memory;
  double bandwidth_gbps = 0;  // the applying roof's bandwidth
  double roof_gflops = 0;     // min(peak GFLOP/s, intensity × bandwidth); 0 without a peak
  double fraction = 0;        // achieved / roof
  bool above = false;         // fraction > 1 + kAboveRoofTolerance
};

// `working_set_bytes`: the bytes one run (one decode step) moves by the cost model; up to the
// peak's cache_bytes the cache roof applies (when the peak has one), else the memory roof, which
// also applies when the working set is unknown (<= 0).
RoofPlacement place_on_roofline(const DevicePeak& peak, double intensity, double gflops,
                                double working_set_bytes);

}  // namespace attnscope
