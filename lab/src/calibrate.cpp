// Device peaks for the roofline (calibrate.hpp): a per-device JSON cache of what each backend's
// measure_peak found, so that a machine is calibrated once, not at every start. docs/roofline.md
// explains the cache.
#include "attnscope/calibrate.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/io.hpp"

namespace attnscope {

std::string peak_cache_path() {
  namespace fs = std::filesystem;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  fs::path dir;
  if (const std::string d = env("ATTNSCOPE_CACHE_DIR"); !d.empty()) {
    dir = d;
  } else if (const std::string x = env("XDG_CACHE_HOME"); !x.empty() && fs::path(x).is_absolute()) {
    dir = fs::path(x) / "attnscope";  // the XDG spec ignores relative paths
  } else if (const std::string home = env("HOME"); !home.empty()) {
    dir = fs::path(home) / ".cache" / "attnscope";
  } else {
    std::error_code ec;
    dir = fs::temp_directory_path(ec) / "attnscope-cache";
  }
  return (dir / "peaks.json").string();
}

namespace {

using nlohmann::json;

constexpr const char* kCacheFormat = "attnscope device peaks";
// Version 2 keys every entry by CPU model too and holds only calibrations that saw no contention.
// A version-1 file (or an unknown version) is read as empty: its peaks were taken without a
// contention check on a machine it does not name, so they are measured again and the file is
// rewritten.
constexpr int kCacheVersion = 2;

// A cache entry that is not a complete, plausible, reliable peak of a named CPU is dropped (and so
// left out on rewrite).
std::optional<DevicePeak> cached_peak(const json& j) {
  try {
    DevicePeak p = peak_from_json(j, "peak");
    if (!(std::isfinite(p.gflops) && p.gflops > 0 && std::isfinite(p.gbps) && p.gbps > 0)) {
      return std::nullopt;
    }
    if (!(std::isfinite(p.cache_gbps) && p.cache_gbps >= 0 && p.cache_bytes >= 0)) {
      return std::nullopt;
    }
    if (!p.reliable || p.cpu_model.empty()) return std::nullopt;
    return p;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The valid entries of the cache file, of every CPU; an absent, unreadable, malformed or
// old-format file reads as empty.
std::vector<DevicePeak> read_cache(const std::string& path) {
  std::vector<DevicePeak> peaks;
  std::ifstream f(path, std::ios::binary);
  if (!f) return peaks;
  std::stringstream text;
  text << f.rdbuf();
  const json root = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_object() || !root.contains("peaks") || !root["peaks"].is_array()) return peaks;
  const auto version = root.find("version");
  if (version == root.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kCacheVersion) {
    return peaks;
  }
  for (const json& e : root["peaks"]) {
    if (auto p = cached_peak(e)) peaks.push_back(std::move(*p));
  }
  return peaks;
}

void write_cache(const std::string& path, const std::vector<DevicePeak>& peaks) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const DevicePeak& p : peaks) {
    nlohmann::ordered_json e = peak_to_json(p);
    e.erase("cached");  // a property of reading it back, not of the measurement
    list.push_back(std::move(e));
  }
  const nlohmann::ordered_json root = {
      {"format", kCacheFormat}, {"version", kCacheVersion}, {"peaks", list}};
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  io::save_text(path, root.dump(2) + "\n");
}

}  // namespace

std::vector<DevicePeak> cached_peaks() {
  std::vector<DevicePeak> peaks = read_cache(peak_cache_path());
  const std::string cpu = host::cpu_model();
  std::erase_if(peaks, [&](const DevicePeak& p) { return p.cpu_model != cpu; });
  for (DevicePeak& p : peaks) p.cached = true;
  return peaks;
}

DevicePeak device_peak(Backend& backend, bool remeasure, const CancelToken& cancel) {
  const std::string path = peak_cache_path();
  const std::string name(backend.name());
  const std::string device = backend.device();
  const std::string cpu = host::cpu_model();
  // The key: the backend, its device, and the host CPU (a home directory shared by machines
  // whose backends describe themselves alike keeps one entry per machine).
  auto same_key = [&](const DevicePeak& p) {
    return p.backend == name && p.device == device && p.cpu_model == cpu;
  };
  if (!remeasure) {
    for (DevicePeak& p : read_cache(path)) {
      if (!same_key(p)) continue;
      p.cached = true;
      return p;
    }
  }
  DevicePeak peak = backend.measure_peak(cancel);
  peak.backend = name;  // the cache key is what the backend says now, whatever measured it
  peak.device = device;
  peak.cpu_model = cpu;
  peak.cached = false;
  // A calibration disturbed by other work is what a busy machine did: it is returned (the caller
  // shows it as unreliable) but never remembered as the device's roof.
  if (!peak.reliable) return peak;
  // Re-read just before writing so that peaks another process cached meanwhile survive.
  std::vector<DevicePeak> peaks = read_cache(path);
  std::erase_if(peaks, same_key);
  peaks.push_back(peak);
  try {
    write_cache(path, peaks);
  } catch (const Error&) {
    // A read-only or missing cache directory costs a re-measurement next time, nothing more.
  }
  return peak;
}

nlohmann::ordered_json peak_to_json(const DevicePeak& p) {
  return {{"backend", p.backend},
          {"device", p.device},
          {"gflops", p.gflops},
          {"gbps", p.gbps},
          {"gemm", p.gemm},
          {"copy", p.copy},
          {"seconds", p.seconds},
          {"measured_at", p.measured_at},
          {"cached", p.cached},
          {"cache_gbps", p.cache_gbps},
          {"cache_bytes", p.cache_bytes},
          {"cache_copy", p.cache_copy},
          {"reliable", p.reliable},
          {"contention", p.contention},
          {"cpu_model", p.cpu_model}};
}

DevicePeak peak_from_json(const json& j, const std::string& path) {
  auto fail = [&](const char* key, const char* what) -> void {
    throw Error(path + (key[0] ? "." : "") + key + " " + what);
  };
  if (!j.is_object()) fail("", "must be an object");
  auto field = [&](const char* key) -> const json* {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  auto text = [&](const char* key, std::string& out, bool required) {
    const json* v = field(key);
    if (!v) {
      if (required) fail(key, "is missing");
      return;
    }
    if (!v->is_string()) fail(key, "must be a string");
    out = v->get<std::string>();
  };
  auto number = [&](const char* key, double& out, bool required) {
    const json* v = field(key);
    if (!v) {
      if (required) fail(key, "is missing");
      return;
    }
    if (!v->is_number()) fail(key, "must be a number");
    out = v->get<double>();
  };
  DevicePeak p;
  text("backend", p.backend, true);
  text("device", p.device, true);
  number("gflops", p.gflops, true);
  number("gbps", p.gbps, true);
  text("gemm", p.gemm, false);
  text("copy", p.copy, false);
  number("seconds", p.seconds, false);
  text("measured_at", p.measured_at, false);
  if (const json* v = field("cached")) {
    if (!v->is_boolean()) fail("cached", "must be true or false");
    p.cached = v->get<bool>();
  }
  number("cache_gbps", p.cache_gbps, false);
  double cache_bytes = 0;
  number("cache_bytes", cache_bytes, false);
  if (!(cache_bytes >= 0 && cache_bytes < 0x1p62)) fail("cache_bytes", "must be a byte count");
  p.cache_bytes = int64_t(cache_bytes);
  text("cache_copy", p.cache_copy, false);
  if (const json* v = field("reliable")) {
    if (!v->is_boolean()) fail("reliable", "must be true or false");
    p.reliable = v->get<bool>();
  }
  text("contention", p.contention, false);
  text("cpu_model", p.cpu_model, false);
  return p;
}

std::string describe(const DevicePeak& peak) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << peak.backend << " (" << peak.device << "): " << peak.gflops << " GFLOP/s fp32 GEMM, "
    << peak.gbps << " GB/s copy";
  if (peak.cache_gbps > 0) s << ", " << peak.cache_gbps << " GB/s in cache";
  if (!peak.measured_at.empty()) {
    s << (peak.cached ? ", cached from " : ", measured ") << peak.measured_at;
  }
  if (!peak.reliable) s << " (unreliable: the machine was busy; not cached)";
  return s.str();
}

RoofPlacement place_on_roofline(const DevicePeak& peak, double intensity, double gflops,
                                double working_set_bytes) {
  RoofPlacement r;
  const bool in_cache = peak.cache_gbps > 0 && peak.cache_bytes > 0 && working_set_bytes > 0 &&
                        working_set_bytes <= double(peak.cache_bytes);
  r.roof = in_cache ? Roof::cache : Roof::memory;
  r.bandwidth_gbps = in_cache ? std::max(peak.cache_gbps, peak.gbps) : peak.gbps;
  if (!(peak.gflops > 0 && r.bandwidth_gbps > 0 && intensity > 0)) return r;
  r.roof_gflops = std::min(peak.gflops, intensity * r.bandwidth_gbps);
  r.fraction = gflops / r.roof_gflops;
  r.above = r.fraction > 1.0 + kAboveRoofTolerance;
  return r;
}

const char* roof_name(Roof roof) {
  return roof == Roof::cache ? "cache" : "memory";
}

}  // namespace attnscope
