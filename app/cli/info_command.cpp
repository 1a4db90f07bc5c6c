// `attnscope-cli info`: what this build offers — variants, backends (with why one is unavailable),
// devices, input patterns and build options — read from the registry, never listed by hand.
#include <fstream>
#include <iostream>
#include <thread>

#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "commands.hpp"
#ifdef ATTNSCOPE_WITH_CUDA
#include "attnscope/cuda/device.hpp"
#endif

namespace attnscope::cli {
namespace {

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

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
  std::cout << "\ndevices:\n  cpu: " << cpu_model() << ", " << std::thread::hardware_concurrency()
            << " hardware threads\n";
#ifdef ATTNSCOPE_WITH_CUDA
  for (const std::string& line : cuda::describe_devices()) std::cout << "  " << line << "\n";
#else
  std::cout << "  cuda: not built (no nvcc at configure time, or ATTNSCOPE_CUDA=OFF)\n";
#endif
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
