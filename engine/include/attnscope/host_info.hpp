// What the engine knows about the machine it runs on, read from /proc where Linux offers it: CPU
// model and clock, logical CPUs, memory, host and executable names, and the current UTC time as
// ISO 8601. The CPU backend's peak measurement, problem validation and the lab's sweeps read it;
// every function degrades to a neutral value ("unknown CPU", 0) off Linux.
#pragma once

#include <cstdint>
#include <string>

namespace attnscope::host {

std::string cpu_model();           // /proc/cpuinfo "model name", else "unknown CPU"
double cpu_mhz();                  // /proc/cpuinfo "cpu MHz" of the first CPU, else 0
int logical_cpus();                // std::thread::hardware_concurrency(), at least 1
int64_t memory_total_bytes();      // /proc/meminfo MemTotal, else physical pages x page size
int64_t memory_available_bytes();  // /proc/meminfo MemAvailable, else memory_total_bytes()
std::string host_name();           // gethostname, else "unknown"
std::string executable_path();     // /proc/self/exe, else ""
std::string utc_now_iso8601();     // "2026-01-31T12:34:56Z"

}  // namespace attnscope::host

namespace attnscope {

// The memory the engine allows itself: physical memory, or ATTNSCOPE_MEMORY_LIMIT_MB when set
// (tests and shared machines). Problem validation and the KV cache's capacity both read it.
int64_t memory_budget_bytes();

}  // namespace attnscope
