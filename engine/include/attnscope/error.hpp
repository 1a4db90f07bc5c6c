// Errors the engine reports to its callers (CLI, GUI, tests).
// One exception type with a human-readable message: callers print it, never parse it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace attnscope {

// Thrown for anything the user can fix: bad shapes, bad files, sizes that do not fit.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when a run is cancelled through its CancelToken; not an error to report loudly.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

// a * b and a + b for sizes (both operands >= 0), throwing Error (naming `what`) instead of
// overflowing int64: a wrapped size would pass a memory-budget check it should fail.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
int64_t checked_add(int64_t a, int64_t b, const char* what);

}  // namespace attnscope
