// `attnscope-cli info`: what this build offers — variants, backends (with why one is unavailable),
// devices and their cached peaks, input patterns and build options — read from the registry and
// the peak cache, never listed by hand.
#include <iostream>
#include <vector>

#include "attnscope/calibrate.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "attnscope/workload.hpp"
#include "commands.hpp"
#ifdef ATTNSCOPE_WITH_CUDA
#include "attnscope/cuda/device.hpp"
#endif

namespace attnscope::cli {
namespace {

int info() {
  std::cout << "attnscope " << ATTNSCOPE_VERSION << "\n\nvariants:\n";
  for (const VariantInfo& v : variants()) {
    std::cout << "  " << v.name;
    for (std::string_view a : v.aliases) std::cout << (a == v.aliases.front() ? " (" : ", ") << a;
    std::cout << (v.aliases.empty() ? "" : ")") << "\n      " << v.title << ": " << v.summary
              << "\n";
  }
  std::cout << "\nbackends:\n";
  for (const BackendInfo& b : backends()) {
    const Support s = b.available();
    std::cout << "  " << b.name << (s.ok ? "" : "  [unavailable: " + s.why_not + "]") << "\n      "
              << b.summary << "\n";
  }
  std::cout << "\ndevices:\n  cpu: " << host_description() << "\n";
#ifdef ATTNSCOPE_WITH_CUDA
  for (const std::string& line : cuda::describe_devices()) std::cout << "  " << line << "\n";
#else
  std::cout << "  cuda: not built (no nvcc at configure time, or ATTNSCOPE_CUDA=OFF)\n";
#endif
  // Peaks measured earlier (`bench --peak`, the GUI's roofline); info itself never measures.
  const std::vector<DevicePeak> peaks = cached_peaks();
  std::cout << "\ndevice peaks (" << peak_cache_path() << "):\n";
  if (peaks.empty()) std::cout << "  none measured yet (attnscope-cli bench --peak)\n";
  for (const DevicePeak& p : peaks) std::cout << "  " << describe(p) << "\n";
  std::cout << "\ninput patterns:\n";
  for (const PatternInfo& p : patterns()) std::cout << "  " << p.name << ": " << p.summary << "\n";
  std::cout << "\nbuild:\n  cuda: "
#ifdef ATTNSCOPE_WITH_CUDA
            << "on"
#else
            << "off"
#endif
            << "\n  -march=native: " << (ATTNSCOPE_BUILD_NATIVE ? "on" : "off")
            << "\n  compiler: " << __VERSION__ << "\n";
  return 0;
}

}  // namespace

std::function<int()> add_info_command(CLI::App& app) {
  app.add_subcommand("info", "List variants, backends, devices, patterns and build options");
  return [] { return info(); };
}

}  // namespace attnscope::cli
