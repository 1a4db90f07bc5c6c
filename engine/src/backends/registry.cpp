// The one table of backends (the variants' is variants/table.cpp): the cpu and reference
// backends, and those registered from outside the engine (the CUDA kernels).
#include "attnscope/registry.hpp"

#include <deque>
#include <mutex>

#include "attnscope/error.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/reference/reference.hpp"

namespace attnscope {
namespace {

// A deque: registering appends without moving the entries find_backend has handed out.
std::deque<BackendInfo>& backend_table() {
  static std::deque<BackendInfo> table = {
      cpu::backend_info(),
      reference::backend_info(),
  };
  return table;
}

std::mutex& backend_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::vector<BackendInfo> backends() {
  std::lock_guard lock(backend_mutex());
  return {backend_table().begin(), backend_table().end()};
}

void register_backend(BackendInfo info) {
  std::lock_guard lock(backend_mutex());
  for (const BackendInfo& b : backend_table()) {
    if (b.name == info.name) return;
  }
  backend_table().push_back(std::move(info));
}

const BackendInfo* find_backend(std::string_view name) {
  std::lock_guard lock(backend_mutex());
  for (const BackendInfo& b : backend_table()) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

std::unique_ptr<Backend> make_backend(std::string_view name) {
  const BackendInfo* info = find_backend(name);
  if (!info) {
    std::string names;
    for (const BackendInfo& b : backends())
      names += (names.empty() ? "" : ", ") + std::string(b.name);
    throw Error("unknown backend '" + std::string(name) + "' (this build has: " + names + ")");
  }
  if (Support s = info->available(); !s.ok) {
    throw Error("backend '" + std::string(name) + "' is not available: " + s.why_not);
  }
  return info->make();
}

}  // namespace attnscope
