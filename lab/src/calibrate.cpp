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

// A cache entry that is not a complete, plausible peak is dropped (and so left out on rewrite).
std::optional<DevicePeak> cached_peak(const json& j) {
  try {
    DevicePeak p = peak_from_json(j, "peak");
    if (!(std::isfinite(p.gflops) && p.gflops > 0 && std::isfinite(p.gbps) && p.gbps > 0)) {
      return std::nullopt;
    }
    return p;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The valid entries of the cache file; an absent, unreadable or malformed file reads as empty.
std::vector<DevicePeak> read_cache(const std::string& path) {
  std::vector<DevicePeak> peaks;
  std::ifstream f(path, std::ios::binary);
  if (!f) return peaks;
  std::stringstream text;
  text << f.rdbuf();
  const json root = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_object() || !root.contains("peaks") || !root["peaks"].is_array()) return peaks;
  for (const json& e : root["peaks"]) {
    if (auto p = cached_peak(e)) peaks.push_back(std::move(*p));
  }
  return peaks;
}

void write_cache(const std::string& path, const std::vector<DevicePeak>& peaks) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const DevicePeak& p : peaks) list.push_back(peak_to_json(p));
  const nlohmann::ordered_json root = {{"format", kCacheFormat}, {"version", 1}, {"peaks", list}};
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  io::save_text(path, root.dump(2) + "\n");
}

}  // namespace

std::vector<DevicePeak> cached_peaks() {
  std::vector<DevicePeak> peaks = read_cache(peak_cache_path());
  for (DevicePeak& p : peaks) p.cached = true;
  return peaks;
}

DevicePeak device_peak(Backend& backend, bool remeasure, const CancelToken& cancel) {
  const std::string path = peak_cache_path();
  const std::string name(backend.name());
  const std::string device = backend.device();
  auto same_key = [&](const DevicePeak& p) { return p.backend == name && p.device == device; };
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
  peak.cached = false;
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
  return {{"backend", p.backend}, {"device", p.device},
          {"gflops", p.gflops},   {"gbps", p.gbps},
          {"gemm", p.gemm},       {"copy", p.copy},
          {"seconds", p.seconds}, {"measured_at", p.measured_at},
          {"cached", p.cached}};
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
  return p;
}

std::string describe(const DevicePeak& peak) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << peak.backend << " (" << peak.device << "): " << peak.gflops << " GFLOP/s fp32 GEMM, "
    << peak.gbps << " GB/s copy";
  if (!peak.measured_at.empty()) {
    s << (peak.cached ? ", cached from " : ", measured ") << peak.measured_at;
  }
  return s.str();
}

}  // namespace attnscope
