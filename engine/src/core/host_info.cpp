// Machine facts for the CPU peak measurement, memory budget and sweep reports (host_info.hpp).
#include "attnscope/host_info.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <thread>

namespace attnscope::host {
namespace {

// The value after "key<spaces>: " of the first line in `file` starting with `key`, or "".
std::string first_field(const char* file, std::string_view key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

// /proc/meminfo values are "<n> kB".
int64_t meminfo_bytes(std::string_view key) {
  const std::string v = first_field("/proc/meminfo", key);
  try {
    return v.empty() ? 0 : static_cast<int64_t>(std::stoll(v)) * 1024;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

std::string cpu_model() {
  const std::string m = first_field("/proc/cpuinfo", "model name");
  return m.empty() ? "unknown CPU" : m;
}

double cpu_mhz() {
  const std::string v = first_field("/proc/cpuinfo", "cpu MHz");
  try {
    return v.empty() ? 0.0 : std::stod(v);
  } catch (const std::exception&) {
    return 0.0;
  }
}

int logical_cpus() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int64_t memory_total_bytes() {
  if (const int64_t b = meminfo_bytes("MemTotal:"); b > 0) return b;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

int64_t memory_available_bytes() {
  if (const int64_t b = meminfo_bytes("MemAvailable:"); b > 0) return b;
  return memory_total_bytes();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

std::string executable_path() {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

}  // namespace attnscope::host
