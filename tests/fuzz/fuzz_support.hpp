// Shared pieces of the fuzz harnesses (docs/fuzzing.md): reporting a finding, the "only Error may
// escape" rule, a per-process scratch directory and bitwise tensor comparison. Each harness is one
// translation unit, so everything here is inline.
#pragma once

#include <stdlib.h>

#include <cxxabi.h>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::fuzz {

// A property does not hold: say which and abort, so that libFuzzer (or the replay) reports the
// input as a crash with a stack trace.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n*** attnscope fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void require(bool ok, const std::string& what) {
  if (!ok) finding(what);
}

// The demangled type of the exception being handled (inside a catch block).
inline std::string current_exception_type() {
  const std::type_info* t = abi::__cxa_current_exception_type();
  if (!t) return "?";
  int status = 0;
  char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : t->name();
  std::free(name);
  return out;
}

// Runs f(): true when it returns, false when it throws attnscope::Error (the one documented way to
// reject input); any other exception escaping is a finding naming `what`.
template <class F>
bool only_error(const char* what, F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(std::string(what) + " let " + current_exception_type() + " escape (only " +
            "attnscope::Error may): " + e.what());
  } catch (...) {
    finding(std::string(what) + " let a non-std exception (" + current_exception_type() +
            ") escape");
  }
}

// A directory of this process's own under $TMPDIR (else /tmp), created on first use and removed
// at exit. Harnesses write the input there and check that nothing else is left behind.
class Scratch {
 public:
  static Scratch& get() {
    static Scratch s;
    return s;
  }
  const std::filesystem::path& dir() const { return dir_; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write(const std::string& name, const uint8_t* data, size_t size) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) finding("cannot write the scratch file " + p);
    return p;
  }

  // Names of the directory's entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Checks the directory holds exactly `expected` (sorted), then empties it.
  void expect_and_clear(const std::vector<std::string>& expected, const char* when) const {
    const std::vector<std::string> found = entries();
    if (found != expected) {
      std::string list;
      for (const std::string& n : found) list += " '" + n + "'";
      finding(std::string("scratch directory after ") + when + " holds [" + list + " ], expected " +
              std::to_string(expected.size()) + " file(s): a partial or temporary file was left");
    }
    clear();
  }

  void clear() const {
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      std::filesystem::remove_all(e.path());
    }
  }

 private:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/attnscope-fuzz-XXXXXX";
    if (!mkdtemp(templ.data())) finding("mkdtemp failed for " + templ);
    dir_ = templ;
  }
  ~Scratch() {  // at exit; a crashing run leaves its directory (and input) for inspection
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::filesystem::path dir_;
};

// Same shape and the same bytes: bitwise, so NaNs compare equal to themselves (payload included)
// and -0 differs from +0.
inline bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.numel() == b.numel() &&
         (a.numel() == 0 || std::memcmp(a.data(), b.data(), static_cast<size_t>(a.bytes())) == 0);
}

// Every field of two problems; "" when equal, else the first field that differs.
inline std::string problem_difference(const AttentionProblem& a, const AttentionProblem& b) {
  const ProblemShape &s = a.shape, &t = b.shape;
  if (a.variant != b.variant) return "variant";
  if (s.batch != t.batch || s.heads != t.heads || s.kv_heads != t.kv_heads) return "batch/heads";
  if (s.q_len != t.q_len || s.kv_len != t.kv_len) return "q_len/kv_len";
  if (s.head_dim != t.head_dim || s.v_head_dim != t.v_head_dim) return "head_dim/v_head_dim";
  if (a.causal != b.causal) return "causal";
  if (a.scale.has_value() != b.scale.has_value() ||
      (a.scale && !(*a.scale == *b.scale || (std::isnan(*a.scale) && std::isnan(*b.scale))))) {
    return "scale";
  }
  if (a.precision != b.precision) return "precision";
  if (a.swa.window != b.swa.window || a.swa.sinks != b.swa.sinks) return "swa";
  if (a.mla.kv_lora_rank != b.mla.kv_lora_rank || a.mla.rope_dim != b.mla.rope_dim ||
      a.mla.nope_dim != b.mla.nope_dim || a.mla.absorbed != b.mla.absorbed) {
    return "mla";
  }
  if (a.moba.block_size != b.moba.block_size || a.moba.top_k != b.moba.top_k) return "moba";
  if (a.gated_delta.chunk_size != b.gated_delta.chunk_size ||
      a.gated_delta.qk_l2norm != b.gated_delta.qk_l2norm ||
      a.gated_delta.recurrent != b.gated_delta.recurrent) {
    return "gated_delta";
  }
  return {};
}

}  // namespace attnscope::fuzz
